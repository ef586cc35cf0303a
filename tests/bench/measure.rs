//! `measure RESULT_FILE PROGRAM [ARGS...]`: run PROGRAM once (stdin, stdout
//! and stderr inherited) and write one line to RESULT_FILE:
//!
//!     <exit code> <wall ns> <user µs> <system µs> <peak RSS KiB>
//!
//! The benchmark's launcher (built by tests/bench/run.sh with plain rustc).
//! Why not the driver itself: a child started from the Python driver inherits
//! the driver's memory high-water mark at exec, so its ru_maxrss reports
//! Python's ~15 MiB, not its own. Started from this small launcher, the floor
//! is this launcher's own footprint (about 1 MiB), well below the figures it
//! measures. Wall time is taken here, around spawn and wait only, so the
//! launcher's own start is not counted.

use std::io::Write;
use std::process::{Command, exit};
use std::time::Instant;

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    maxrss: i64,
    rest: [i64; 13],
}

unsafe extern "C" {
    fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut Rusage) -> i32;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: measure RESULT_FILE PROGRAM [ARGS...]");
        exit(2);
    }
    let start = Instant::now();
    let child = match Command::new(&args[1]).args(&args[2..]).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("measure: cannot start {}: {e}", args[1]);
            exit(127);
        }
    };
    let mut status = 0i32;
    let mut usage = Rusage {
        utime: Timeval { sec: 0, usec: 0 },
        stime: Timeval { sec: 0, usec: 0 },
        maxrss: 0,
        rest: [0; 13],
    };
    let pid = child.id() as i32;
    // SAFETY: both pointers refer to live, correctly laid out locals.
    if unsafe { wait4(pid, &mut status, 0, &mut usage) } != pid {
        eprintln!("measure: wait4 failed: {}", std::io::Error::last_os_error());
        exit(125);
    }
    let wall = start.elapsed().as_nanos();
    // Exit code, or 128 + signal number as a shell reports it.
    let code = if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    };
    let micros = |t: &Timeval| t.sec * 1_000_000 + t.usec;
    let line = format!(
        "{code} {wall} {} {} {}\n",
        micros(&usage.utime),
        micros(&usage.stime),
        usage.maxrss
    );
    if let Err(e) = std::fs::File::create(&args[0]).and_then(|mut f| f.write_all(line.as_bytes())) {
        eprintln!("measure: cannot write {}: {e}", args[0]);
        exit(125);
    }
    exit(code);
}
