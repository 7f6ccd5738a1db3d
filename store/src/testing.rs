//! A PostgreSQL server of a test's own (feature `testing`, for this crate's tests and the
//! end-to-end tests): started from Debian's binaries as the unprivileged user `nobody`, in a
//! temporary directory, reachable only through a unix socket there (no TCP), and stopped again
//! when dropped, also when the test fails.

use std::path::PathBuf;
use std::process::Command;

/// A PostgreSQL server; stopped (and its files removed) when dropped.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
}

impl Postgres {
    pub fn start(name: &str) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/setup.sh installs the Debian package)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("initdb");
        let dir = std::env::temp_dir().join(format!("ivr-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for PostgreSQL");
        let nobody = |args: &[&str]| {
            let out = Command::new("setpriv").args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]).args(args).output().expect("setpriv runs");
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&dir).status().expect("chown runs");
        let text = |p: PathBuf| p.display().to_string();
        let data = text(dir.join("data"));
        nobody(&[&text(bin.join("initdb")), "-D", &data, "-U", "ivr", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        let pg = Self { dir: dir.clone(), bin: bin.clone() };
        // No TCP at all (listen_addresses empty): the socket lives in the test's directory.
        let opts = format!("-c listen_addresses='' -k {} -c fsync=off", dir.display());
        nobody(&[&text(bin.join("pg_ctl")), "-D", &data, "-o", &opts, "-l", &text(dir.join("log")), "-w", "start"]);
        pg
    }

    /// The store URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://ivr@localhost/postgres?host={}", self.dir.display())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

