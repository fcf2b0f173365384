//! Embeds the Node and Python SDKs (runtime files only) so that an installed `offload` binary
//! can run `.js` and `.py` jobs without the source tree: see `src/runtime.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, skip: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if skip.contains(&name) || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, skip, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let sdks = manifest.join("../../sdks");
    let sdks = sdks.canonicalize().unwrap_or(sdks);
    println!("cargo:rerun-if-changed={}", sdks.display());
    let skip = ["test", "tests", "bench", "node_modules", "__pycache__"];
    let mut files = Vec::new();
    for sub in ["node", "python/offload_worker"] {
        let dir = sdks.join(sub);
        println!("cargo:rerun-if-changed={}", dir.display());
        walk(&dir, &skip, &mut files);
    }
    let mut code = String::from("/// The SDK files: (path relative to `sdks/`, contents).\n");
    code.push_str("pub(crate) static SDK_FILES: &[(&str, &[u8])] = &[\n");
    for f in &files {
        let rel = f.strip_prefix(&sdks).unwrap();
        if rel.extension().is_some_and(|e| e == "pyc") || rel.ends_with("README.md") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", f.display());
        let _ = writeln!(
            code,
            "    ({:?}, include_bytes!({:?})),",
            rel.to_string_lossy(),
            f.to_string_lossy()
        );
    }
    code.push_str("];\n");
    let _ = writeln!(
        code,
        "/// Where the SDKs were at build time.\npub(crate) const BUILD_SDK_DIR: &str = {:?};",
        sdks.to_string_lossy()
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("sdk_files.rs");
    std::fs::write(out, code).unwrap();
}
