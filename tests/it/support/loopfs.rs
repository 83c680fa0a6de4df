//! A small ext4 made in a file and loop-mounted in a temporary directory, unmounted on
//! drop: a real file system whose reserved blocks and size the test chooses.

use std::path::PathBuf;
use std::process::Command;

pub struct LoopFs {
    dir: tempfile::TempDir,
}

impl LoopFs {
    /// `kib` of ext4 with `reserved_pct` of its blocks reserved for root. An error (to
    /// skip with) where the machine does not allow it: not root, no loop device.
    pub fn new(kib: u64, reserved_pct: u32) -> Result<LoopFs, String> {
        if nix::unistd::geteuid().as_raw() != 0 {
            return Err("not root: cannot mount".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(kib * 1024))
            .map_err(|e| e.to_string())?;
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).map_err(|e| e.to_string())?;
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", &reserved_pct.to_string()])
            .arg(&image))?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount))?;
        Ok(LoopFs { dir })
    }

    pub fn mount(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.mount()).status();
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
