//! The request's hard deadline, kept by the kernel: a one-shot `ITIMER_REAL` whose SIGALRM
//! prints one line and ends the process with exit 1, whatever it was waiting on (a stdin
//! that never closes, a stuck lock, a mint). The kubelet kills plugins after a minute and
//! then logs nothing useful, so we fail first, on our own terms.
//!
//! A timer rather than a watchdog thread: a thread costs a cache hit its clone, its stack and
//! a malloc arena, which is most of what a hit does besides starting. Nothing reaches stdout
//! before the timer is disarmed, so firing can leave no partial answer behind.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::time::Duration;

/// The line the signal handler writes: set before the timer is armed, never freed.
static LINE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static LINE_LEN: AtomicUsize = AtomicUsize::new(0);

/// An armed deadline; dropping it disarms the timer.
#[must_use = "the deadline is disarmed when this is dropped"]
pub struct Armed(());

/// Arms the deadline `limit` from now, or sooner: a timer already running (the front binary's,
/// kept across its `exec` of the minting binary) is not extended. Returns the armed guard
/// and the time it allows.
pub fn arm_within(limit: Duration) -> (Armed, Duration) {
    let left = remaining()
        .filter(|r| !r.is_zero())
        .map_or(limit, |r| r.min(limit));
    (arm(left), left)
}

/// The time left on a running timer, if one is.
fn remaining() -> Option<Duration> {
    let mut current = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    // SAFETY: a plain system call filling a value we own.
    let ok = unsafe { libc::getitimer(libc::ITIMER_REAL, &mut current) } == 0;
    let v = current.it_value;
    (ok && (v.tv_sec > 0 || v.tv_usec > 0))
        .then(|| Duration::new(v.tv_sec as u64, v.tv_usec as u32 * 1000))
}

/// Arms the deadline `limit` from now.
pub fn arm(limit: Duration) -> Armed {
    let text = format!(
        "pullcred: no answer within the deadline of {}\n",
        humantime::format_duration(limit)
    );
    let line: &'static mut [u8] = Box::leak(text.into_bytes().into_boxed_slice());
    LINE_LEN.store(line.len(), Ordering::SeqCst);
    LINE.store(line.as_mut_ptr(), Ordering::SeqCst);
    // SAFETY: the handler only calls async-signal-safe functions (write, _exit) on memory
    // that stays valid for the life of the process.
    unsafe {
        libc::signal(
            libc::SIGALRM,
            on_deadline as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    set_timer(limit);
    Armed(())
}

impl Drop for Armed {
    fn drop(&mut self) {
        set_timer(Duration::ZERO);
    }
}

fn set_timer(after: Duration) {
    let value = libc::timeval {
        tv_sec: after.as_secs() as libc::time_t,
        tv_usec: after.subsec_micros() as libc::suseconds_t,
    };
    let timer = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: value,
    };
    // SAFETY: a plain system call on a value we own; a zero value disarms.
    unsafe {
        libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
    }
}

extern "C" fn on_deadline(_: libc::c_int) {
    let line = LINE.load(Ordering::SeqCst);
    let len = LINE_LEN.load(Ordering::SeqCst);
    // SAFETY: async-signal-safe calls only; `line` points at `len` bytes leaked in `arm`.
    unsafe {
        if !line.is_null() {
            libc::write(2, line as *const libc::c_void, len);
        }
        libc::_exit(1);
    }
}
