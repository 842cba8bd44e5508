//! ONNX Runtime, loaded once per process, and the model files it runs: where
//! they are, and the check of each against the sha256 manifest before use.

use ort::session::Session;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::ModelError;

/// The manifest written by `models/fetch.py`'s maintainers: file → sha256.
const MANIFEST: &str = include_str!("../manifest.toml");

/// The default folder of the model files: the one `models/fetch.py` fills in a
/// checkout. An installed gateway names its own in `[faces] models_dir`.
pub fn default_models_dir() -> PathBuf {
    match std::env::var_os("GATEWAYD_MODELS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/files")),
    }
}

/// How inference sessions are set up.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Folder with the model files (and `libonnxruntime.so` unless `ORT_DYLIB_PATH` is set).
    pub models_dir: PathBuf,
    /// Intra-op threads per session.
    pub threads: usize,
    /// ONNX Runtime's memory arena, one for all sessions: keeps activation
    /// buffers between runs (~10 MB for YuNet and SFace). On by default:
    /// without it every large activation is a fresh allocation, which under
    /// the daemon's allocator settings (gateway `memory.rs`: large blocks
    /// mapped on their own) means fresh pages on every run; measured 49 ms
    /// against 33 ms per face.
    pub arena: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            models_dir: default_models_dir(),
            threads: 1,
            arena: true,
        }
    }
}

static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// The process's ONNX Runtime environment. The library is `ORT_DYLIB_PATH` when
/// set, else `libonnxruntime.so` in the models folder (linked there by the fetch).
fn environment(models_dir: &Path) -> Result<&'static ort::environment::Environment, ModelError> {
    let env = ENV.get_or_init(|| {
        let lib = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| models_dir.join("libonnxruntime.so"));
        if !lib.exists() {
            return Err(format!(
                "ONNX Runtime library {} not found (run `bash deploy/dev.sh setup`, or set ORT_DYLIB_PATH)",
                lib.display()
            ));
        }
        let builder = ort::init_from(&lib)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", lib.display()))?;
        let env = builder
            .with_name("gatewayd")
            .build()
            .map_err(|e| format!("ONNX Runtime: {e}"))?;
        shared_arena(&env).map_err(|e| format!("ONNX Runtime's shared arena: {e}"))?;
        Ok(env)
    });
    env.as_ref().map_err(|e| ModelError::Runtime(e.clone()))
}

/// Registers one CPU arena with the environment for every session that asks
/// for it (`with_env_allocators`). The models run one after another on the
/// matcher thread, so one arena serves them all: with an arena per session
/// each kept its own peak (~8 MB each for YuNet and SFace). It grows by what
/// is asked, not to the next power of two.
fn shared_arena(env: &ort::environment::Environment) -> Result<(), ort::Error> {
    use ort::sys;
    use ort::AsPointer;
    let api = ort::api();
    // kSameAsRequested (ONNX Runtime's ArenaExtendStrategy enum).
    let keys = [c"arena_extend_strategy".as_ptr()];
    let values = [1usize];
    let mut cfg: *mut sys::OrtArenaCfg = std::ptr::null_mut();
    let mut mem: *mut sys::OrtMemoryInfo = std::ptr::null_mut();
    // SAFETY: ONNX Runtime's C API as documented: the config and memory info
    // are created here, used for the registration (which copies what it
    // needs) and released; `env` outlives the call.
    unsafe {
        ort::Error::result_from_status((api.CreateArenaCfgV2)(
            keys.as_ptr(),
            values.as_ptr(),
            keys.len(),
            &mut cfg,
        ))?;
        let r = ort::Error::result_from_status((api.CreateCpuMemoryInfo)(
            sys::OrtAllocatorType::OrtArenaAllocator,
            sys::OrtMemType::OrtMemTypeDefault,
            &mut mem,
        ))
        .and_then(|()| {
            ort::Error::result_from_status((api.CreateAndRegisterAllocator)(
                env.ptr() as *mut sys::OrtEnv,
                mem,
                cfg,
            ))
        });
        if !mem.is_null() {
            (api.ReleaseMemoryInfo)(mem);
        }
        (api.ReleaseArenaCfg)(cfg);
        r
    }
}

/// The sha256 the manifest records for `file`.
pub fn manifest_sha256(file: &str) -> Option<String> {
    let doc: toml::Table = MANIFEST.parse().ok()?;
    doc.get("file")?
        .as_array()?
        .iter()
        .filter_map(|e| e.as_table())
        .find(|e| e.get("file").and_then(|f| f.as_str()) == Some(file))
        .and_then(|e| e.get("sha256")?.as_str().map(str::to_owned))
}

/// Checks a model file against the manifest (streaming: the file is not held
/// in memory); returns its path.
pub fn verify(models_dir: &Path, file: &str) -> Result<PathBuf, ModelError> {
    use std::io::Read;
    let path = models_dir.join(file);
    let missing = |e: std::io::Error| ModelError::Missing {
        path: path.clone(),
        detail: e.to_string(),
    };
    let mut f = std::fs::File::open(&path).map_err(missing)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(missing)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let want = manifest_sha256(file).ok_or_else(|| ModelError::Manifest(file.to_owned()))?;
    let got = hex::encode(hasher.finalize());
    if got != want {
        return Err(ModelError::Checksum { path, got, want });
    }
    Ok(path)
}

/// Reads a (small) model file, checked against the manifest.
pub fn read_verified(models_dir: &Path, file: &str) -> Result<Vec<u8>, ModelError> {
    let path = verify(models_dir, file)?;
    std::fs::read(&path).map_err(|e| ModelError::Missing {
        path,
        detail: e.to_string(),
    })
}

/// Builds a session for a model file: checked, single-owner, with `threads`
/// intra-op threads that sleep instead of spinning between runs (spinning
/// threads of several sessions starve each other on a small box).
pub fn session(opts: &RuntimeOptions, file: &str) -> Result<Session, ModelError> {
    let path = verify(&opts.models_dir, file)?;
    let env = environment(&opts.models_dir)?;
    let fail = |e: ort::Error<ort::session::builder::SessionBuilder>| {
        ModelError::Runtime(format!("{file}: {}", ort::Error::<()>::from(e)))
    };
    Session::builder(env)
        .map_err(|e| ModelError::Runtime(format!("{file}: {e}")))?
        .with_intra_threads(opts.threads.max(1))
        .map_err(fail)?
        .with_inter_threads(1)
        .map_err(fail)?
        .with_intra_op_spinning(false)
        .map_err(fail)?
        .with_inter_op_spinning(false)
        .map_err(fail)?
        .with_execution_providers([ort::ep::CPU::default()
            .with_arena_allocator(opts.arena)
            .build()])
        .map_err(fail)
        .and_then(|b| {
            if opts.arena {
                b.with_env_allocators().map_err(fail)
            } else {
                Ok(b)
            }
        })?
        .commit_from_file(&path)
        .map_err(|e| ModelError::Runtime(format!("{file}: {e}")))
}

/// Hands memory freed on the heap back to the system. Loading a model makes
/// several transient copies of its weights; glibc keeps such freed heap
/// around, and on a small box that shows as resident memory for good.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused heap pages; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}
