//! Top patterns on a generated log with known groups, through the real path: a file
//! followed by the log collector, lines applied to the state, patterns read off its buffer.

use chrono::{Duration, Utc};
use std::collections::BTreeMap;
use std::io::Write;
use watchpost::collect::Collector;
use watchpost::collect::logs::LogCollector;
use watchpost::config::Config;
use watchpost::model::update::Update;
use watchpost::state::{AppState, Window};

/// xorshift64*: deterministic "random" ids, addresses and numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from_digit(self.below(16) as u32, 16).unwrap())
            .collect()
    }
    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }
    fn ipv4(&mut self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.below(256),
            self.below(256),
            self.below(256),
            self.below(256)
        )
    }
    fn ipv6(&mut self) -> String {
        format!(
            "{}:{}::{}:{}",
            self.hex(4),
            self.below(0xfff),
            self.hex(3),
            self.hex(4)
        )
    }
}

/// Five error templates in different formats, and the pattern each must become.
fn error_line(template: usize, rng: &mut Rng, at: &str) -> String {
    match template {
        0 => format!(
            r#"{{"timestamp":"{at}","level":"ERROR","message":"Failed to call MCP tool after {} ms","request_id":"{}","latency_ms":{}.{}}}"#,
            rng.below(60_000),
            rng.uuid(),
            rng.below(9000),
            rng.below(100)
        ),
        1 => format!(
            "{at} ERROR connection to {}:{} refused (attempt {})",
            rng.ipv4(),
            rng.below(65536),
            rng.below(10)
        ),
        2 => format!(
            r#"ts={at} level=error msg="user u{}@example.com denied on {}" role=viewer"#,
            rng.below(100_000),
            rng.uuid()
        ),
        3 => format!(
            "[error] commit {} failed checksum 0x{}",
            rng.hex(40),
            rng.hex(8)
        ),
        _ => format!(
            "ERROR: peer {} reset at {} after {}.{}s",
            rng.ipv6(),
            Utc::now().format("%H:%M:%S%.3f"),
            rng.below(30),
            rng.below(1000)
        ),
    }
}

const EXPECTED: [&str; 5] = [
    "Failed to call MCP tool after <num> ms",
    "connection to <ip>:<num> refused (attempt <num>)",
    "user <email> denied on <uuid>",
    "commit <hex> failed checksum <hex>",
    "peer <ip> reset at <ts> after <num>s",
];

#[tokio::test]
async fn a_generated_log_gives_exactly_its_five_patterns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.log");
    std::fs::write(&path, "").unwrap();
    let config = Config::parse(&format!(
        "[logs.app]\nfiles = [{:?}]\n",
        path.display().to_string()
    ))
    .unwrap();
    let mut collector = LogCollector::new("app", &config.logs["app"]);
    let mut state = AppState::new(Window::new("t", Utc::now(), Duration::hours(24)));
    let apply = |updates: Vec<Update>, state: &mut AppState| {
        let mut lines = 0;
        for update in updates {
            if let Update::Logs(l) = &update {
                lines += l.len();
            }
            state.apply(update, Utc::now());
        }
        lines
    };
    apply(collector.poll().await, &mut state);

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    let mut text = String::new();
    let total = 20_000;
    for n in 0..total {
        let at = (Utc::now() - Duration::seconds((total - n) as i64)).to_rfc3339();
        if rng.below(4) == 0 {
            // Info lines, with numbers too: not errors, so no pattern.
            text.push_str(&format!(
                "{at} INFO served request {} in {} ms\n",
                rng.uuid(),
                rng.below(500)
            ));
            continue;
        }
        // Uneven weights so the order by count is known.
        let template = match rng.below(15) {
            0..5 => 0,
            5..9 => 1,
            9..12 => 2,
            12..14 => 3,
            _ => 4,
        };
        text.push_str(&error_line(template, &mut rng, &at));
        text.push('\n');
        *want.entry(EXPECTED[template]).or_default() += 1;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();

    let mut read = 0;
    for _ in 0..10 {
        read += apply(collector.poll().await, &mut state);
    }
    assert_eq!(read, total);

    let patterns = state.logs.patterns();
    let got: BTreeMap<&str, u64> = patterns
        .iter()
        .map(|p| (p.template.as_str(), p.count))
        .collect();
    assert_eq!(got, want, "exactly the five templates, with their counts");
    let counts: Vec<u64> = patterns.iter().map(|p| p.count).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    for p in &patterns {
        assert!(p.first_seen <= p.last_seen);
        assert_eq!(p.sources, ["app"]);
        assert!(p.example.is_error);
        assert_eq!(
            watchpost::state::patterns::mask(&p.example.message),
            p.template,
            "the example is one of the group"
        );
    }
    assert_eq!(state.logs.pattern_table().evicted_patterns, 0);
}
