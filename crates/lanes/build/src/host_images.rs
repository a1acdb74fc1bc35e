//! Build images made from this machine's own Debian tools, for the devnet, tests and the
//! bench: `wat` (wabt's `wat2wasm`) and `c` (clang `--target=wasm32` with `wasm-ld`). Each
//! entry point follows SEP-58's convention (`<entry point> contract build [--opt…]`, working
//! directory `/source`) and writes the wasm to `/out`. A source that ships `build.sh` runs it
//! instead, as a build script in a real project would (that is how tests make a build try the
//! network, or run past its limits).

use crate::image::{assemble_host_rootfs, Image, ImageConfig, ImageError, ImageStore};

/// The tools every host image carries besides its compiler.
const COMMON: &[&str] = &["dash", "bash", "sleep", "cat", "ls"];

const WAT_ENTRY: &str = r#"#!/bin/sh
# hallmark wat image, stellar-cli style: `contract build [--meta KEY=VAL]... [--opt...]`
# assembles every *.wat under /source into /out with wat2wasm (options passed on) and
# records each --meta entry in a contractmetav0 section (XDR SCMetaEntry stream, SEP-46),
# as `stellar contract build --meta` does. A source with build.sh runs that instead.
set -eu
[ "${1:-}" = contract ] && shift
[ "${1:-}" = build ] && shift
if [ -f ./build.sh ]; then exec /bin/sh ./build.sh "$@"; fi
byte() { printf "\\$(printf %03o "$1")"; }
u32be() { byte $(($1 >> 24 & 255)); byte $(($1 >> 16 & 255)); byte $(($1 >> 8 & 255)); byte $(($1 & 255)); }
pad() { r=$(( (4 - $1 % 4) % 4 )); while [ "$r" -gt 0 ]; do byte 0; r=$((r - 1)); done; }
leb() { n=$1; while :; do b=$((n & 127)); n=$((n >> 7)); if [ "$n" -gt 0 ]; then byte $((b | 128)); else byte "$b"; break; fi; done; }
xdr_len() { echo $(( 4 + $1 + (4 - $1 % 4) % 4 )); }
meta=/tmp/meta.bin
: > "$meta"
size=0
opts=""
while [ $# -gt 0 ]; do
  case "$1" in
    --meta) kv=$2; shift 2 ;;
    --meta=*) kv=${1#--meta=}; shift ;;
    *) opts="$opts $1"; shift; continue ;;
  esac
  k=${kv%%=*}; v=${kv#*=}
  { u32be 0; u32be ${#k}; printf %s "$k"; pad ${#k}; u32be ${#v}; printf %s "$v"; pad ${#v}; } >> "$meta"
  size=$((size + 4 + $(xdr_len ${#k}) + $(xdr_len ${#v})))
done
for f in *.wat; do
  out="/out/${f%.wat}.wasm"
  # shellcheck disable=SC2086
  wat2wasm $opts "$f" -o "$out"
  if [ "$size" -gt 0 ]; then
    { byte 0; leb $((1 + 14 + size)); leb 14; printf contractmetav0; cat "$meta"; } >> "$out"
  fi
done
"#;

const C_ENTRY: &str = r#"#!/bin/sh
# hallmark c image: `contract build [--opt...]` compiles every *.c under /source into one
# wasm32 module in /out with clang and wasm-ld; a source with build.sh runs that instead.
set -eu
[ "${1:-}" = contract ] && shift
[ "${1:-}" = build ] && shift
if [ -f ./build.sh ]; then exec /bin/sh ./build.sh "$@"; fi
clang --target=wasm32 -O2 -nostdlib -ffreestanding -Wl,--no-entry -Wl,--export-dynamic \
  "$@" -o /out/contract.wasm *.c
"#;

fn import(store: &ImageStore, binaries: &[&str], entry: &str) -> Result<Image, ImageError> {
    let dir = tempfile::tempdir().map_err(|e| ImageError::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let mut tools: Vec<&str> = COMMON.to_vec();
    tools.extend(binaries);
    assemble_host_rootfs(dir.path(), &tools, &[("/usr/local/bin/build", entry, true)])?;
    // /bin/sh is dash, as on Debian (a link inside the image, stored as a link).
    let dash = crate::image::which("dash").unwrap_or_else(|| "/usr/bin/dash".into());
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin)
        .and_then(|()| std::os::unix::fs::symlink(&dash, bin.join("sh")))
        .map_err(|e| ImageError::Io {
            path: bin.join("sh"),
            source: e,
        })?;
    store.import_dir(
        dir.path(),
        &ImageConfig {
            entrypoint: vec!["/usr/local/bin/build".into()],
            env: vec![],
        },
    )
}

/// Imports the `wat` image (wabt's `wat2wasm`) into `store`.
pub fn wat_image(store: &ImageStore) -> Result<Image, ImageError> {
    import(store, &["wat2wasm"], WAT_ENTRY)
}

/// Imports the `c` image (clang and wasm-ld) into `store`.
pub fn c_image(store: &ImageStore) -> Result<Image, ImageError> {
    import(store, &["clang", "wasm-ld"], C_ENTRY)
}

/// A SEP-58 `bldimg` reference for a locally imported image.
pub fn local_reference(name: &str, image: &Image) -> String {
    format!("localhost/hallmark/{name}@{}", image.digest)
}
