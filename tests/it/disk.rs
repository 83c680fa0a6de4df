//! The disk figure against `df` on a real ext4 with half its blocks reserved for root
//! (`mkfs.ext4 -m 50` in a file, loop-mounted). Reserved blocks are neither used nor
//! available, so a formula of size minus available shows an empty disk 50 % full, where
//! `df` says 1%. Needs root and a loop device: elsewhere it says so and skips (the formula
//! itself is unit-tested in src/collect/host.rs on statvfs and `df` numbers in any case).

use std::path::Path;
use std::process::Command;
use watchpost::collect::host::{df_numbers, parse_df, pick_disks};
use watchpost::model::update::DiskUsage;

use crate::support::loopfs::LoopFs;

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `df`'s Use% of one mount, and its whole `-P -T -B1` output.
fn df(mount: &Path) -> (f64, String) {
    let text = run(Command::new("df").args(["-P", "-T", "-B1"]).arg(mount)).unwrap();
    let line = text.lines().nth(1).unwrap();
    let capacity = line
        .split_whitespace()
        .find(|f| f.ends_with('%'))
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    (capacity, text)
}

fn fill(mount: &Path, megabytes: usize) {
    std::fs::write(mount.join("data"), vec![7u8; megabytes << 20]).unwrap();
    run(Command::new("sync").arg("-f").arg(mount)).unwrap();
}

#[test]
fn the_disk_figure_agrees_with_df_on_a_disk_with_reserved_blocks() {
    let fs = match LoopFs::new(32 * 1024, 50) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED (needs a loop-mounted ext4): {why}");
            return;
        }
    };
    let mount = fs.mount();
    // Empty, then a third of what users may write, then nearly full for users.
    for megabytes in [0, 5, 12] {
        if megabytes > 0 {
            fill(&mount, megabytes);
        }
        let (df_pct, df_text) = df(&mount);
        // Locally: statvfs, as `df` reads it.
        let (size, used, available) = df_numbers(&mount).unwrap();
        let local = DiskUsage {
            mount: mount.display().to_string(),
            used_bytes: used as f64,
            available_bytes: available as f64,
            total_bytes: size as f64,
        };
        // Over SSH: the host's own `df -P -T -B1`, parsed.
        let lines: Vec<&str> = df_text.lines().collect();
        let remote = pick_disks(&parse_df(&lines));
        assert_eq!(remote.len(), 1, "{df_text}");
        for (how, disk) in [("statvfs", &local), ("df output", &remote[0])] {
            // df rounds its Use% up to a whole percent.
            assert_eq!(
                disk.used_pct().ceil(),
                df_pct,
                "{how} after {megabytes} MB: {:.2}% vs df {df_pct}%\n{df_text}",
                disk.used_pct()
            );
        }
        assert_eq!(local.used_bytes, remote[0].used_bytes, "{df_text}");
        assert_eq!(
            local.available_bytes, remote[0].available_bytes,
            "{df_text}"
        );
        if megabytes == 0 {
            // The reserve is not "used": an empty disk is not half full.
            assert!(local.used_pct() < 5.0, "{:.1}%", local.used_pct());
        }
    }
}
