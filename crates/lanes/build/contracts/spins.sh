#!/bin/sh
# A build script that never finishes: it spins until the sandbox's CPU-time limit stops it.
echo "building forever"
while :; do :; done
