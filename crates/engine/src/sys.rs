//! The few libc calls of the engine that neither std nor `nix` offers; every
//! `unsafe` block of the binary is here.

/// The local time zone's UTC offset (seconds) and abbreviation at `unix`
/// (localtime_r(3), which reads TZ and /etc/localtime).
pub fn local_offset(unix: i64) -> (i64, String) {
    let t: libc::time_t = unix as libc::time_t;
    // SAFETY: `tm` is plain old data that localtime_r fills in; zeroed is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return (0, "UTC".into());
    }
    let zone = if tm.tm_zone.is_null() {
        "UTC".to_string()
    } else {
        // SAFETY: tm_zone points to a NUL-terminated static string owned by libc.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    (tm.tm_gmtoff, zone)
}
