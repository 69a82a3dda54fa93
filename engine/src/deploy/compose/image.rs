//! The node image: built with no registry from the node binary and the shared libraries it
//! links (`FROM scratch`, in-memory build context, the engine's classic builder), tagged by the
//! binary's content hash so it is rebuilt only when the binary changes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::BuildImageOptions;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::docker::msg;

/// Selects an existing image instead of building one (never built by us).
pub const IMAGE_ENV: &str = "LOGOS_BLOCKCHAIN_TESTNET_IMAGE";
/// Repository part of the images we build.
pub const IMAGE_REPO: &str = "nomos-script-node";
/// Where the node binary sits inside the image (the image's entrypoint).
pub const NODE_BIN_IN_IMAGE: &str = "/usr/local/bin/nomos-node";
/// The Dockerfile shared with `scripts/build-image.sh`.
pub const DOCKERFILE: &str = include_str!("../../../../assets/image/Dockerfile");

/// The image a run uses.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// `repo:tag`.
    pub tag: String,
    /// Whether this call built it (false: cached, or selected by `LOGOS_BLOCKCHAIN_TESTNET_IMAGE`).
    pub built: bool,
    /// How long hashing plus the build took (zero when cached).
    pub took: Duration,
}

/// `nomos-script-node:<first 12 hex of sha256(binary)>`.
pub fn tag_for(binary: &Path) -> Result<String, String> {
    let bytes = std::fs::read(binary)
        .map_err(|e| format!("failed to read the node binary {}: {e}", binary.display()))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    Ok(format!("{IMAGE_REPO}:{}", &digest[..12]))
}

/// The shared libraries `ldd` lists for `binary` (none for a static binary).
pub fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| {
            format!(
                "failed to run ldd on {}: {e} (ldd lists the libraries the image needs)",
                binary.display()
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if text.contains("not a dynamic executable") || err.contains("not a dynamic executable") {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        return Err(format!("ldd {} failed: {}", binary.display(), err.trim()));
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim().split(' ').next().unwrap_or(""),
            None => line.split(' ').next().unwrap_or(""),
        };
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        } else if line.contains("not found") {
            return Err(format!(
                "{} needs a library that is not installed: {line}",
                binary.display()
            ));
        }
    }
    Ok(libs)
}

/// The build context: the Dockerfile plus `rootfs/` with the binary and its libraries (symlinks
/// resolved, stored at the paths the dynamic loader looks for).
pub fn build_context(binary: &Path) -> Result<Vec<u8>, String> {
    let libs = linked_libraries(binary)?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path_in_tar: &str, data: &[u8], mode: u32| -> Result<(), String> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path_in_tar, data)
            .map_err(|e| format!("failed to build the image context ({path_in_tar}): {e}"))
    };
    add("Dockerfile", DOCKERFILE.as_bytes(), 0o644)?;
    let bin = std::fs::read(binary)
        .map_err(|e| format!("failed to read the node binary {}: {e}", binary.display()))?;
    add(&format!("rootfs{NODE_BIN_IN_IMAGE}"), &bin, 0o755)?;
    for lib in &libs {
        let data = std::fs::read(lib).map_err(|e| {
            format!(
                "failed to read library {} (ldd lists it): {e}",
                lib.display()
            )
        })?;
        add(&format!("rootfs{}", lib.display()), &data, 0o755)?;
    }
    tar.into_inner()
        .map_err(|e| format!("failed to build the image context: {e}"))
}

/// Makes sure the image for `binary` exists: `LOGOS_BLOCKCHAIN_TESTNET_IMAGE` if set (must
/// exist), else the content-hash tag, built when missing.
pub async fn ensure_image(docker: &Docker, binary: &Path) -> Result<ImageInfo, String> {
    if let Ok(tag) = std::env::var(IMAGE_ENV)
        && !tag.trim().is_empty()
    {
        let tag = tag.trim().to_owned();
        return match docker.inspect_image(&tag).await {
            Ok(_) => Ok(ImageInfo {
                tag,
                built: false,
                took: Duration::ZERO,
            }),
            Err(e) => Err(format!(
                "{IMAGE_ENV} = {tag}: the Docker engine has no such image ({}); it is never built or pulled here (scripts/build-image.sh builds one)",
                msg(&e)
            )),
        };
    }
    let started = Instant::now();
    let bin = binary.to_path_buf();
    let tag = tokio::task::spawn_blocking(move || tag_for(&bin))
        .await
        .map_err(|e| format!("hashing the node binary failed: {e}"))??;
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(ImageInfo {
            tag,
            built: false,
            took: Duration::ZERO,
        });
    }
    build(docker, binary, &tag).await?;
    Ok(ImageInfo {
        tag,
        built: true,
        took: started.elapsed(),
    })
}

/// The label naming the binary a node image was built from (`gc` removes an image only when
/// that binary is gone or has changed, and no container uses the image).
pub const IMAGE_BINARY_LABEL: &str = "nomos-script.image.binary";

/// Builds `tag` from `binary` (even if it exists).
pub async fn build(docker: &Docker, binary: &Path, tag: &str) -> Result<(), String> {
    let bin = binary.to_path_buf();
    let context = tokio::task::spawn_blocking(move || build_context(&bin))
        .await
        .map_err(|e| format!("building the image context failed: {e}"))??;
    let opts = BuildImageOptions {
        t: Some(tag.to_owned()),
        rm: true,
        forcerm: true,
        labels: Some(
            [
                ("nomos-script.image".to_owned(), "node".to_owned()),
                (IMAGE_BINARY_LABEL.to_owned(), binary.display().to_string()),
            ]
            .into(),
        ),
        ..Default::default()
    };
    let mut stream = docker.build_image(opts, None, Some(bollard::body_full(context.into())));
    let mut output: Vec<String> = Vec::new();
    let fail = |why: String, output: &[String]| {
        let tail = output[output.len().saturating_sub(5)..].join(" | ");
        format!(
            "failed to build image {tag} from {}: {why}{}",
            binary.display(),
            if tail.is_empty() {
                String::new()
            } else {
                format!(" (build output: {tail})")
            }
        )
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail {
                    return Err(fail(detail.message.unwrap_or_default(), &output));
                }
                if let Some(s) = info.stream {
                    let s = s.trim();
                    if !s.is_empty() {
                        output.push(s.to_owned());
                    }
                }
            }
            Err(e) => return Err(fail(msg(&e), &output)),
        }
    }
    docker.inspect_image(tag).await.map(|_| ()).map_err(|e| {
        fail(
            format!("the build finished but the image is missing: {}", msg(&e)),
            &output,
        )
    })
}
