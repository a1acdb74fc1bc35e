#!/bin/sh
# A build script that fetches a dependency over the network before building, as a careless
# build.rs or Makefile would. In the sandbox there is no network: the fetch fails, and so
# does the build.
echo "fetching a dependency from 192.0.2.10:443"
bash -c 'exec 3<>/dev/tcp/192.0.2.10/443' || { echo "build failed: could not reach the network"; exit 1; }
wat2wasm counter.wat -o /out/counter.wasm
