//! `--sweep confidence=LO:HI:STEP`: the replay at each value of the fast-tier confidence
//! gate, as a table and a hand-written SVG (cost against the share of complex queries kept
//! off the fast tier), so an operator picks the gate by looking.

use super::report::round;
use super::sim::Outcome;
use anyhow::{Result, bail};
use std::fmt::Write as _;

/// One point of the sweep.
#[derive(Debug, Clone)]
pub struct Point {
    pub threshold: f64,
    pub cost_vs_all_frontier: f64,
    pub complex_kept: f64,
    pub fast_share: f64,
    pub cost_per_1k_usd: f64,
    pub escalation_rate: f64,
}

impl Point {
    pub fn of(threshold: f64, o: &Outcome) -> Point {
        Point {
            threshold,
            cost_vs_all_frontier: o.cost_vs_all_frontier(),
            complex_kept: o.complex_kept_share(),
            fast_share: o.share_by_tier().get("fast").copied().unwrap_or(0.0),
            cost_per_1k_usd: o.cost_per_1k_usd(),
            escalation_rate: o.escalation_rate(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "threshold": round(self.threshold, 4),
            "cost_vs_all_frontier": round(self.cost_vs_all_frontier, 4),
            "complex_kept_off_fast": round(self.complex_kept, 4),
            "share_fast": round(self.fast_share, 4),
            "cost_per_1k_usd": round(self.cost_per_1k_usd, 6),
            "escalation_rate": round(self.escalation_rate, 4),
        })
    }
}

/// Parses `confidence=LO:HI:STEP` into its values, LO and HI included. Computed from an
/// integer index so 0.5 + 49 x 0.01 lands on 0.99, not 0.98999.
pub fn parse(spec: &str) -> Result<Vec<f64>> {
    let Some(range) = spec.strip_prefix("confidence=") else {
        bail!("--sweep `{spec}`: only `confidence=LO:HI:STEP` is supported");
    };
    let parts: Vec<f64> = range
        .split(':')
        .map(|p| p.trim().parse::<f64>().map_err(|e| anyhow::anyhow!("--sweep `{spec}`: `{p}`: {e}")))
        .collect::<Result<_>>()?;
    let [lo, hi, step] = parts[..] else { bail!("--sweep `{spec}`: expected LO:HI:STEP") };
    if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi || step.is_nan() || step <= 0.0 {
        bail!("--sweep `{spec}`: need 0 <= LO <= HI <= 1 and STEP > 0");
    }
    let n = ((hi - lo) / step + 1e-9).floor() as usize;
    if n > 10_000 {
        bail!("--sweep `{spec}`: {n} points is too many");
    }
    Ok((0..=n).map(|i| round(lo + i as f64 * step, 6)).collect())
}

/// The table printed to stdout and drawn beside the plot.
pub fn table(points: &[Point]) -> Vec<String> {
    let mut rows = vec![format!("{:>9} {:>9} {:>9} {:>8} {:>10}", "threshold", "cost/all", "complex", "fast", "$/1k")];
    rows.push(format!("{:>9} {:>9} {:>9} {:>8} {:>10}", "", "frontier", "off fast", "share", ""));
    for p in points {
        rows.push(format!(
            "{:>9.3} {:>8.1}% {:>8.1}% {:>7.1}% {:>10.4}",
            p.threshold,
            p.cost_vs_all_frontier * 100.0,
            p.complex_kept * 100.0,
            p.fast_share * 100.0,
            p.cost_per_1k_usd
        ));
    }
    rows
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Axis range with a little padding, never empty.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.01);
    lo = (lo - pad).max(0.0);
    hi += pad;
    (lo, hi)
}

/// The plot: x = complex queries kept off fast, y = cost vs all frontier; thresholds giving
/// the same point share one label ("0.50-0.62"), so a fine sweep stays readable.
pub fn svg(points: &[Point], title: &str) -> String {
    const W: f64 = 560.0;
    const LEFT: f64 = 70.0;
    const TOP: f64 = 50.0;
    const PW: f64 = 440.0;
    const PH: f64 = 360.0;
    let rows = table(points);
    let height = (TOP + PH + 60.0).max(TOP + 16.0 * rows.len() as f64 + 20.0);
    let width = W + 8.0 * rows.first().map_or(60, String::len) as f64 + 40.0;
    let (x0, x1) = range(points.iter().map(|p| p.complex_kept));
    let (y0, y1) = range(points.iter().map(|p| p.cost_vs_all_frontier));
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * PW;
    let py = |y: f64| TOP + PH - (y - y0) / (y1 - y0) * PH;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{LEFT}" y="24" font-size="14">{}</text>"#, esc(title));
    let _ = writeln!(s, r#"<rect x="{LEFT}" y="{TOP}" width="{PW}" height="{PH}" fill="none" stroke="black"/>"#);
    for i in 0..=5 {
        let f = f64::from(i) / 5.0;
        let (xv, yv) = (x0 + f * (x1 - x0), y0 + f * (y1 - y0));
        let (gx, gy) = (px(xv), py(yv));
        let _ = writeln!(s, r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{:.1}" stroke="#ddd"/>"##, TOP + PH);
        let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#ddd"/>"##, LEFT + PW);
        let _ = writeln!(
            s,
            r#"<text x="{gx:.1}" y="{:.1}" text-anchor="middle">{:.0}%</text>"#,
            TOP + PH + 16.0,
            xv * 100.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.0}%</text>"#,
            LEFT - 6.0,
            gy + 4.0,
            yv * 100.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">share of complex queries kept off the fast tier</text>"#,
        LEFT + PW / 2.0,
        TOP + PH + 38.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">cost vs all-frontier</text>"#,
        TOP + PH / 2.0
    );
    let mut line = String::new();
    for p in points {
        let _ = write!(line, "{:.1},{:.1} ", px(p.complex_kept), py(p.cost_vs_all_frontier));
    }
    let _ = writeln!(s, r##"<polyline points="{}" fill="none" stroke="#4a7ab5"/>"##, line.trim_end());
    let mut drawn: Vec<(f64, f64)> = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let p = &points[i];
        let mut j = i;
        while j + 1 < points.len()
            && points[j + 1].complex_kept == p.complex_kept
            && points[j + 1].cost_vs_all_frontier == p.cost_vs_all_frontier
        {
            j += 1;
        }
        let label =
            if i == j { format!("{}", p.threshold) } else { format!("{}-{}", p.threshold, points[j].threshold) };
        let (cx, cy) = (px(p.complex_kept), py(p.cost_vs_all_frontier));
        let _ = writeln!(
            s,
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="3.5" fill="#1f4e8c"><title>threshold {label}</title></circle>"##
        );
        // Labels that would overprint an earlier one are left to the tooltip and the table.
        if !drawn.iter().any(|&(x, y): &(f64, f64)| (x - cx).abs() < 60.0 && (y - cy).abs() < 12.0) {
            let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}">{label}</text>"#, cx + 6.0, cy - 5.0);
            drawn.push((cx, cy));
        }
        i = j + 1;
    }
    for (k, row) in rows.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{W}" y="{:.1}" xml:space="preserve">{}</text>"#,
            TOP + 12.0 + 16.0 * k as f64,
            esc(row)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inclusive_ranges() {
        let v = parse("confidence=0.5:0.99:0.01").unwrap();
        assert_eq!(v.len(), 50);
        assert_eq!(v.first(), Some(&0.5));
        assert_eq!(v.last(), Some(&0.99));
        assert_eq!(parse("confidence=0.9:0.9:0.1").unwrap(), vec![0.9]);
        for bad in [
            "load=0.1:0.2:0.1",
            "confidence=0.5:0.4:0.1",
            "confidence=0.5:0.9",
            "confidence=0.5:0.9:0",
            "confidence=0:2:0.5",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn svg_is_well_formed_and_groups_labels() {
        let p = |t: f64, x: f64, y: f64| Point {
            threshold: t,
            cost_vs_all_frontier: y,
            complex_kept: x,
            fast_share: 0.5,
            cost_per_1k_usd: 1.0,
            escalation_rate: 0.0,
        };
        let s = svg(&[p(0.5, 0.8, 0.1), p(0.6, 0.8, 0.1), p(0.7, 0.9, 0.2)], "t <x>");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert!(s.contains(">0.5-0.6</text>"));
        assert!(s.contains(">0.7</text>"));
        assert!(s.contains("t &lt;x&gt;"));
        assert_eq!(s.matches("<circle").count(), 2);
    }
}
