//! Video in, through FFmpeg's libraries (libavformat, libavcodec, libswscale;
//! the same code OpenCV's videoio runs for RTSP, HTTP and files): open a
//! source with a deadline, demux its video stream, decode on one thread, and
//! convert the frames that are wanted to packed BGR, scaled down on the way.
//!
//! Linked directly rather than through OpenCV because Debian's OpenCV videoio
//! also loads GStreamer, GDAL, GDCM, poppler and ~200 other libraries: about
//! 40 MB more resident memory for a gateway that only needs the decoder. V4L2
//! lives in libavdevice, which pulls in SDL, PulseAudio and X11 (~17 MB): it is
//! loaded only when a camera names a device.

use ff::ffi;
use ffmpeg_next as ff;
use std::ffi::{c_int, c_void, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::config::Source;

/// Why a source could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("cannot open {name}: {reason}")]
    Open { name: String, reason: String },
    #[error("{0} has no video stream")]
    NoVideo(String),
    #[error("cannot decode {codec}: {reason}")]
    Codec { codec: String, reason: String },
    #[error("no data for {0} ms")]
    Stalled(u128),
    #[error("stopped")]
    Stopped,
    #[error("reading the stream failed: {0}")]
    Read(String),
    #[error("V4L2 devices need FFmpeg's libavdevice: {0}")]
    NoDevices(String),
}

/// A decoded frame, packed BGR rows.
#[derive(Debug)]
pub struct BgrPicture {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// What FFmpeg's interrupt callback consults: a blocked open or read gives up
/// when its deadline passes or the driver is told to stop.
struct Watch {
    start: Instant,
    deadline_ms: AtomicU64,
    stop: CancellationToken,
}

impl Watch {
    fn arm(&self, within: Duration) {
        let at = self.start.elapsed() + within;
        self.deadline_ms
            .store(at.as_millis() as u64, Ordering::Relaxed);
    }

    fn expired(&self) -> bool {
        self.start.elapsed().as_millis() as u64 > self.deadline_ms.load(Ordering::Relaxed)
    }
}

extern "C" fn interrupted(opaque: *mut c_void) -> c_int {
    // SAFETY: `opaque` is the `Watch` boxed in the `VideoInput` that owns the
    // format context; the box is dropped only after the context is closed.
    let w = unsafe { &*(opaque as *const Watch) };
    (w.stop.is_cancelled() || w.expired()) as c_int
}

/// One opened source. Fields drop in order: the format context (which may
/// still call `interrupted`) goes before the `Watch` it points to.
pub struct VideoInput {
    input: ff::format::context::Input,
    decoder: ff::decoder::Video,
    scaler: Option<(
        ff::software::scaling::Context,
        (ff::format::Pixel, u32, u32, u32),
    )>,
    frame: ff::frame::Video,
    packet: ff::Packet,
    stream: usize,
    timeout: Duration,
    draining: bool,
    label: String,
    watch: Box<Watch>,
}

// SAFETY: a `VideoInput` is used by one thread at a time (the camera's
// blocking session); FFmpeg's contexts are not tied to the thread that made them.
unsafe impl Send for VideoInput {}

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // FFmpeg logs to stderr; its errors reach the caller as `VideoError`s,
        // so only what it deems errors is printed (as OpenCV does).
        ff::log::set_level(ff::log::Level::Error);
        ff::format::network::init();
    });
}

/// The V4L2 demuxer, once libavdevice (the soname that matches libavformat's
/// major version) has registered its devices with libavformat.
fn v4l2_format() -> Result<*const ffi::AVInputFormat, VideoError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    let registered = REGISTERED.get_or_init(|| {
        // SAFETY: plain FFI: the version query has no preconditions; dlopen/dlsym
        // get NUL-terminated names and the symbol's C signature is `void(void)`.
        unsafe {
            let major = ffi::avformat_version() >> 16;
            let names = [format!("libavdevice.so.{major}"), "libavdevice.so".into()];
            for name in names {
                let Ok(c) = CString::new(name) else { continue };
                let handle = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
                if handle.is_null() {
                    continue;
                }
                let sym = libc::dlsym(handle, c"avdevice_register_all".as_ptr());
                if sym.is_null() {
                    return Err("libavdevice has no avdevice_register_all".into());
                }
                let register: extern "C" fn() = std::mem::transmute(sym);
                register();
                return Ok(());
            }
            Err(format!(
                "libavdevice.so.{major} is not installed (Debian: libavdevice{major})"
            ))
        }
    });
    if let Err(e) = registered {
        return Err(VideoError::NoDevices(e.clone()));
    }
    // SAFETY: a NUL-terminated name; the result is a static or null.
    let f = unsafe { ffi::av_find_input_format(c"video4linux2".as_ptr()) };
    if f.is_null() {
        return Err(VideoError::NoDevices(
            "libavdevice was built without video4linux2".into(),
        ));
    }
    Ok(f)
}

fn ff_error(e: ff::Error, watch: &Watch, timeout: Duration) -> VideoError {
    if watch.stop.is_cancelled() {
        VideoError::Stopped
    } else if matches!(e, ff::Error::Exit) || watch.expired() {
        VideoError::Stalled(timeout.as_millis())
    } else {
        VideoError::Read(e.to_string())
    }
}

impl VideoInput {
    /// Opens `source`, giving up after `timeout` without data or when `stop`
    /// is cancelled, and prepares a one-thread decoder for its best video stream.
    pub fn open(
        source: &Source,
        timeout: Duration,
        stop: CancellationToken,
    ) -> Result<VideoInput, VideoError> {
        init();
        let (name, format, mut options) = match source {
            Source::Url(u) => {
                let mut o = ff::Dictionary::new();
                // Interleaved RTP over the RTSP connection: no UDP ports to
                // open in a firewall, no loss on a busy link (OpenCV's default too).
                if u.starts_with("rtsp") {
                    o.set("rtsp_transport", "tcp");
                }
                (u.clone(), std::ptr::null(), o)
            }
            Source::File(p) => (
                p.display().to_string(),
                std::ptr::null(),
                ff::Dictionary::new(),
            ),
            Source::Device(d) => (d.clone(), v4l2_format()?, ff::Dictionary::new()),
        };
        let open_err = |reason: String| VideoError::Open {
            name: name.clone(),
            reason,
        };
        let url = CString::new(name.as_str()).map_err(|_| open_err("NUL in the name".into()))?;
        let watch = Box::new(Watch {
            start: Instant::now(),
            deadline_ms: AtomicU64::new(0),
            stop,
        });
        watch.arm(timeout);
        // SAFETY: the context is allocated here and handed to
        // avformat_open_input, which frees it on failure; on success it is
        // owned by `Input`. The interrupt's opaque pointer is the boxed `watch`,
        // which `VideoInput` keeps (and drops last).
        let input = unsafe {
            let mut ctx = ffi::avformat_alloc_context();
            if ctx.is_null() {
                return Err(open_err("out of memory".into()));
            }
            (*ctx).interrupt_callback = ffi::AVIOInterruptCB {
                callback: Some(interrupted),
                opaque: &*watch as *const Watch as *mut c_void,
            };
            let mut opts = options.disown();
            let r = ffi::avformat_open_input(&mut ctx, url.as_ptr(), format as _, &mut opts);
            options = ff::Dictionary::own(opts);
            // A stall or a stop while opening or probing is told as such.
            let failed = |r: c_int, what: &str| match ff_error(ff::Error::from(r), &watch, timeout)
            {
                VideoError::Read(reason) => open_err(format!("{what}{reason}")),
                other => other,
            };
            if r < 0 {
                return Err(failed(r, ""));
            }
            let input = ff::format::context::Input::wrap(ctx);
            let r = ffi::avformat_find_stream_info(ctx, std::ptr::null_mut());
            if r < 0 {
                return Err(failed(r, "no stream information: "));
            }
            input
        };
        drop(options);
        let stream = input
            .streams()
            .best(ff::media::Type::Video)
            .ok_or_else(|| VideoError::NoVideo(name.clone()))?;
        let codec_name = stream.parameters().id().name().to_owned();
        let codec_err = |e: ff::Error| VideoError::Codec {
            codec: codec_name.clone(),
            reason: e.to_string(),
        };
        let mut ctx =
            ff::codec::context::Context::from_parameters(stream.parameters()).map_err(codec_err)?;
        // One thread: a camera's frames are small next to face matching, and
        // each extra decoder thread keeps its own reference frames.
        ctx.set_threading(ff::threading::Config {
            kind: ff::threading::Type::Frame,
            count: 1,
            ..Default::default()
        });
        let decoder = ctx.decoder().video().map_err(codec_err)?;
        let label = format!("{} {}", input.format().name(), codec_name);
        let index = stream.index();
        Ok(VideoInput {
            input,
            decoder,
            scaler: None,
            frame: ff::frame::Video::empty(),
            packet: ff::Packet::empty(),
            stream: index,
            timeout,
            draining: false,
            label,
            watch,
        })
    }

    /// The container and codec, e.g. `rtsp h264`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The stream's nominal frame rate, when it declares a plausible one.
    pub fn frame_rate(&self) -> Option<f64> {
        let r = self.input.stream(self.stream)?.avg_frame_rate();
        let fps = f64::from(r);
        (fps.is_finite() && fps > 1.0 && fps < 240.0).then_some(fps)
    }

    /// Decodes the next frame and keeps it for [`VideoInput::picture`].
    /// `Ok(false)` at the end of a file or stream. A packet the decoder
    /// refuses (a damaged frame on a lossy link) is skipped, as players do.
    pub fn advance(&mut self) -> Result<bool, VideoError> {
        loop {
            match self.decoder.receive_frame(&mut self.frame) {
                Ok(()) => return Ok(true),
                Err(ff::Error::Eof) => return Ok(false),
                Err(ff::Error::Other { errno }) if errno == libc::EAGAIN => {}
                Err(e) => {
                    return Err(VideoError::Codec {
                        codec: self.label.clone(),
                        reason: e.to_string(),
                    })
                }
            }
            if self.draining {
                return Ok(false);
            }
            self.watch.arm(self.timeout);
            match self.packet.read(&mut self.input) {
                Ok(()) => {
                    if self.packet.stream() == self.stream {
                        if let Err(e) = self.decoder.send_packet(&self.packet) {
                            tracing::debug!(source = %self.label, "packet skipped: {e}");
                        }
                    }
                }
                Err(ff::Error::Eof) => {
                    // Frames still inside the decoder come out before the end.
                    self.draining = true;
                    let _ = self.decoder.send_eof();
                }
                Err(e) => return Err(ff_error(e, &self.watch, self.timeout)),
            }
        }
    }

    /// The last decoded frame as packed BGR, scaled down (area averaging) to at
    /// most `max_width` pixels wide.
    pub fn picture(&mut self, max_width: u32) -> Result<BgrPicture, VideoError> {
        let (w, h, fmt) = (self.frame.width(), self.frame.height(), self.frame.format());
        if w == 0 || h == 0 || fmt == ff::format::Pixel::None {
            return Err(VideoError::Read("no decoded frame".into()));
        }
        let (dw, dh) = if w > max_width {
            let dh = (h as u64 * max_width as u64 / w as u64).max(1) as u32;
            (max_width, dh)
        } else {
            (w, h)
        };
        let key = (fmt, w, h, dw);
        if self.scaler.as_ref().is_none_or(|(_, k)| *k != key) {
            let s = ff::software::scaling::Context::get(
                fmt,
                w,
                h,
                ff::format::Pixel::BGR24,
                dw,
                dh,
                ff::software::scaling::Flags::AREA,
            )
            .map_err(|e| VideoError::Codec {
                codec: format!("{fmt:?} to BGR"),
                reason: e.to_string(),
            })?;
            self.scaler = Some((s, key));
        }
        let Some((scaler, _)) = self.scaler.as_mut() else {
            return Err(VideoError::Read("no scaler".into()));
        };
        let stride = dw as usize * 3;
        let mut data = vec![0u8; stride * dh as usize];
        // SAFETY: the source planes and strides are the decoded frame's own;
        // the destination is one packed plane of `stride * dh` bytes, exactly
        // what swscale writes for BGR24 at `dw` x `dh`.
        let rows = unsafe {
            let src = &*self.frame.as_ptr();
            let dst = [
                data.as_mut_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            ];
            let dst_stride = [stride as c_int, 0, 0, 0];
            ffi::sws_scale(
                scaler.as_mut_ptr(),
                src.data.as_ptr() as *const *const u8,
                src.linesize.as_ptr(),
                0,
                h as c_int,
                dst.as_ptr(),
                dst_stride.as_ptr(),
            )
        };
        if rows != dh as c_int {
            return Err(VideoError::Codec {
                codec: format!("{fmt:?} to BGR"),
                reason: format!("{rows} of {dh} rows converted"),
            });
        }
        Ok(BgrPicture {
            width: dw,
            height: dh,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn open(source: Source, timeout_ms: u64, stop: CancellationToken) -> VideoError {
        match VideoInput::open(&source, Duration::from_millis(timeout_ms), stop) {
            Ok(v) => panic!("{} opened", v.label()),
            Err(e) => e,
        }
    }

    #[test]
    fn a_missing_or_non_video_file_names_the_file() {
        let e = open(
            Source::File(PathBuf::from("/nonexistent/clip.mp4")),
            2000,
            CancellationToken::new(),
        );
        assert!(e.to_string().contains("/nonexistent/clip.mp4"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("notes.mp4");
        std::fs::write(&junk, "this is not a video").unwrap();
        let e = open(Source::File(junk.clone()), 2000, CancellationToken::new());
        assert!(e.to_string().contains("notes.mp4"), "{e}");
    }

    /// A server that accepts the connection and never answers: the open
    /// gives up at its deadline, or at once when the driver is stopped.
    #[test]
    fn a_silent_server_times_out_and_a_stop_interrupts() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("rtsp://{}/cam", server.local_addr().unwrap());
        let t = Instant::now();
        let e = open(Source::Url(url.clone()), 1000, CancellationToken::new());
        assert!(matches!(e, VideoError::Stalled(1000)), "{e}");
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());

        let stop = CancellationToken::new();
        let s = stop.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            s.cancel();
        });
        let t = Instant::now();
        let e = open(Source::Url(url), 60_000, stop);
        assert!(matches!(e, VideoError::Stopped), "{e}");
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
        canceller.join().unwrap();
    }

    /// V4L2 comes from libavdevice, loaded on first use: a missing device
    /// is an error that names it (no camera is attached on a build machine).
    #[test]
    fn a_missing_v4l2_device_is_named() {
        let e = open(
            Source::Device("/dev/video-gatewayd-test".into()),
            2000,
            CancellationToken::new(),
        );
        assert!(e.to_string().contains("/dev/video-gatewayd-test"), "{e}");
    }
}
