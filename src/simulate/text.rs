//! The text form of a [`Report`], as `meridian simulate` prints it.

use std::fmt::Write as _;

use super::{PoolShare, Report, Summary};

impl Report {
    /// The report as `meridian simulate` prints it: the summary first, then one line per
    /// network, then (with `down`) the comparison with the baseline.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "service   {} policy {}, overprovisioning {}{}",
            self.service,
            self.policy,
            self.overprovisioning,
            if self.down.is_empty() {
                String::new()
            } else {
                format!(", down: {}", self.down.join(", "))
            }
        );
        write_summary(&mut out, &self.summary);
        let _ = writeln!(out, "networks:");
        for n in &self.networks {
            let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
            let _ = writeln!(
                out,
                "  {:<22} weight {:<12} region {:<8} at {:.2},{:.2} ({})  {}  rtt {} ms, best {} {} ms, excess {} ms",
                n.network.to_string(),
                n.weight,
                n.region,
                n.position.lat,
                n.position.lon,
                n.position.source,
                shares(&n.pools),
                ms(n.expected_rtt_ms),
                n.best_pool.as_deref().unwrap_or("-"),
                ms(n.best_rtt_ms),
                ms(n.excess_ms),
            );
        }
        if let Some(w) = &self.what_if {
            let _ = writeln!(out, "baseline (nothing down):");
            write_summary(&mut out, &w.baseline);
            let _ = writeln!(
                out,
                "pools (share of these networks: baseline -> what-if; engine: load / budget of demand):"
            );
            for p in &w.pools {
                let engine = match (p.load, p.budget) {
                    (Some(l), Some(b)) => {
                        format!("  load {:>5.1}% / {:>5.1}%", l * 100.0, b * 100.0)
                    }
                    (Some(l), None) => format!("  load {:>5.1}% / unbounded", l * 100.0),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  {:<14} {:>6.1}% -> {:>6.1}%{engine}{}",
                    p.pool,
                    p.baseline_share * 100.0,
                    p.what_if_share * 100.0,
                    if p.over_capacity {
                        "  OVER CAPACITY"
                    } else {
                        ""
                    }
                );
            }
            let _ = writeln!(out, "moved: {} network(s)", w.moved.len());
            for m in &w.moved {
                let _ = writeln!(
                    out,
                    "  {:<22} weight {:<12} {} -> {}",
                    m.network.to_string(),
                    m.weight,
                    shares(&m.from),
                    shares(&m.to)
                );
            }
        }
        out
    }
}

/// `pool share%, ...`, or `fallback` for none.
fn shares(l: &[PoolShare]) -> String {
    if l.is_empty() {
        return "fallback".to_string();
    }
    l.iter()
        .map(|s| format!("{} {:.0}%", s.pool, s.share * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_summary(out: &mut String, s: &Summary) {
    let _ = writeln!(
        out,
        "summary   {} network(s), weight {}: {:.1}% within 10% of their best RTT, mean excess {:.2} ms{}",
        s.networks,
        s.total_weight,
        s.within_10pct * 100.0,
        s.mean_excess_ms,
        if s.unserved_weight > 0.0 {
            format!(", weight {} unserved (fallback)", s.unserved_weight)
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "traffic   {}", shares(&s.pools));
}
