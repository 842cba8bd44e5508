//! JPEG through libjpeg-turbo's TurboJPEG API (the decoder OpenCV's imgcodecs
//! and FFmpeg's camera streams use too): photos decode to the same pixels as
//! the models' accuracy figures were measured on, and snapshots encode with its
//! SIMD code.

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};

type Handle = *mut c_void;

// TurboJPEG 2.x (Debian 12: libturbojpeg0 2.1.5), turbojpeg.h.
const TJPF_BGR: c_int = 1;
const TJSAMP_420: c_int = 2;
const TJERR_WARNING: c_int = 0;

#[link(name = "turbojpeg")]
extern "C" {
    fn tjInitDecompress() -> Handle;
    fn tjInitCompress() -> Handle;
    fn tjDestroy(handle: Handle) -> c_int;
    fn tjDecompressHeader3(
        handle: Handle,
        jpeg: *const u8,
        size: c_ulong,
        width: *mut c_int,
        height: *mut c_int,
        subsamp: *mut c_int,
        colorspace: *mut c_int,
    ) -> c_int;
    fn tjDecompress2(
        handle: Handle,
        jpeg: *const u8,
        size: c_ulong,
        dst: *mut u8,
        width: c_int,
        pitch: c_int,
        height: c_int,
        pixel_format: c_int,
        flags: c_int,
    ) -> c_int;
    fn tjCompress2(
        handle: Handle,
        src: *const u8,
        width: c_int,
        pitch: c_int,
        height: c_int,
        pixel_format: c_int,
        jpeg: *mut *mut u8,
        size: *mut c_ulong,
        subsamp: c_int,
        quality: c_int,
        flags: c_int,
    ) -> c_int;
    fn tjFree(buffer: *mut u8);
    fn tjGetErrorStr2(handle: Handle) -> *mut c_char;
    fn tjGetErrorCode(handle: Handle) -> c_int;
}

/// A TurboJPEG instance, destroyed when dropped.
struct Tj(Handle);

impl Tj {
    fn new(compress: bool) -> Result<Tj, String> {
        // SAFETY: the init functions take nothing and return a handle or null.
        let h = unsafe {
            if compress {
                tjInitCompress()
            } else {
                tjInitDecompress()
            }
        };
        if h.is_null() {
            return Err("libjpeg-turbo could not start".into());
        }
        Ok(Tj(h))
    }

    fn error(&self) -> String {
        // SAFETY: a valid handle; the message is a NUL-terminated string owned
        // by libjpeg-turbo, copied out at once.
        unsafe { CStr::from_ptr(tjGetErrorStr2(self.0)) }
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Tj {
    fn drop(&mut self) {
        // SAFETY: the handle came from tjInit* and is destroyed once.
        unsafe {
            tjDestroy(self.0);
        }
    }
}

/// A JPEG whose header has been read: its size is known before any pixel
/// is decoded.
pub struct Decoder<'a> {
    tj: Tj,
    jpeg: &'a [u8],
    width: u32,
    height: u32,
}

impl<'a> Decoder<'a> {
    pub fn new(jpeg: &'a [u8]) -> Result<Decoder<'a>, String> {
        let tj = Tj::new(false)?;
        let (mut w, mut h, mut ss, mut cs) = (0, 0, 0, 0);
        // SAFETY: the buffer and its length are the caller's slice; the
        // outputs are locals.
        let r = unsafe {
            tjDecompressHeader3(
                tj.0,
                jpeg.as_ptr(),
                jpeg.len() as c_ulong,
                &mut w,
                &mut h,
                &mut ss,
                &mut cs,
            )
        };
        if r != 0 || w <= 0 || h <= 0 {
            return Err(tj.error());
        }
        Ok(Decoder {
            tj,
            jpeg,
            width: w as u32,
            height: h as u32,
        })
    }

    /// Width and height, as the header declares them.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Decodes to packed BGR. A warning (a damaged but complete image) is
    /// accepted, as OpenCV accepts it; a fatal error is not.
    pub fn bgr(&self) -> Result<Vec<u8>, String> {
        let (w, h) = (self.width, self.height);
        let mut out = vec![0u8; w as usize * h as usize * 3];
        // SAFETY: `out` holds exactly height rows of width * 3 bytes, the
        // pitch given; the source is the caller's slice.
        let r = unsafe {
            tjDecompress2(
                self.tj.0,
                self.jpeg.as_ptr(),
                self.jpeg.len() as c_ulong,
                out.as_mut_ptr(),
                w as c_int,
                (w * 3) as c_int,
                h as c_int,
                TJPF_BGR,
                0,
            )
        };
        // SAFETY: a valid handle.
        if r != 0 && unsafe { tjGetErrorCode(self.tj.0) } != TJERR_WARNING {
            return Err(self.tj.error());
        }
        Ok(out)
    }
}

/// Encodes packed BGR rows at `quality`, 4:2:0.
pub fn encode_bgr(bgr: &[u8], w: u32, h: u32, quality: i32) -> Result<Vec<u8>, String> {
    let pitch = w as usize * 3;
    if w == 0 || h == 0 || bgr.len() < pitch * h as usize {
        return Err(format!("{w}x{h} BGR needs more than {} bytes", bgr.len()));
    }
    let tj = Tj::new(true)?;
    let mut buf: *mut u8 = std::ptr::null_mut();
    let mut len: c_ulong = 0;
    // SAFETY: the source rows lie within `bgr` (checked above); TurboJPEG
    // allocates the output, which is copied and freed with tjFree.
    unsafe {
        let r = tjCompress2(
            tj.0,
            bgr.as_ptr(),
            w as c_int,
            pitch as c_int,
            h as c_int,
            TJPF_BGR,
            &mut buf,
            &mut len,
            TJSAMP_420,
            quality.clamp(1, 100),
            0,
        );
        if r != 0 {
            if !buf.is_null() {
                tjFree(buf);
            }
            return Err(tj.error());
        }
        let out = std::slice::from_raw_parts(buf, len as usize).to_vec();
        tjFree(buf);
        Ok(out)
    }
}
