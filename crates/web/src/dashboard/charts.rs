//! Charts as SVG, rendered on the server: event-rate bars, sparklines, duration histograms and
//! tag distribution bars. Every piece of text in them is escaped; the output is inserted into
//! pages as markup.
//!
//! The bar charts stretch to the width of the page (`preserveAspectRatio="none"`), so their
//! words are HTML beside the SVG rather than SVG text, which would stretch with the bars: the
//! labels read the same on a phone and on a wide screen.

use store::HistogramBar;

use super::format;

/// Escapes text for SVG/HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The shortest span an event-rate chart covers, in seconds.
const MIN_SPAN: f64 = 900.0;

/// Where an event-rate chart over [since, now] starts when its data begins at `first` (the
/// oldest event it shows): at `since` when the data fills most of the span, otherwise a little
/// before `first`, so that a new issue or a fresh install fills the chart instead of being one
/// bar at its right edge. Never before `since`, never less than 15 minutes.
pub fn chart_start(since: f64, now: f64, first: Option<f64>) -> f64 {
    let Some(first) = first.filter(|f| *f > since) else { return since };
    let span = ((now - first) * 1.25).max(MIN_SPAN);
    (now - span).max(since)
}

/// The start of the oldest non-empty bar of a series over [since, now], if any.
pub fn first_bar(values: &[u64], since: f64, now: f64) -> Option<f64> {
    let step = (now - since) / values.len().max(1) as f64;
    values.iter().position(|v| *v > 0).map(|i| since + step * i as f64)
}

/// A bar chart of counts over time (`values` in order), with the start, the width of one bar
/// and the highest count under it, and each bar's count and time span in a tooltip.
pub fn bars(values: &[u64], since: f64, now: f64, title: &str) -> String {
    let (w, h) = (720.0, 120.0);
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = values.len().max(1) as f64;
    let bw = w / n;
    let step = (now - since) / n;
    let mut s = format!(
        r#"<figure class="chart"><svg viewBox="0 0 {w} {h}" preserveAspectRatio="none" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    s.push_str(&format!(r#"<line class="axis" x1="0" y1="{h}" x2="{w}" y2="{h}" vector-effect="non-scaling-stroke"/>"#));
    for (i, v) in values.iter().enumerate() {
        let bh = (*v as f64 / max * (h - 4.0)).max(if *v > 0 { 2.0 } else { 0.0 });
        let t0 = since + step * i as f64;
        s.push_str(&format!(
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}"><title>{}, from {}</title></rect>"#,
            i as f64 * bw + bw * 0.1,
            h - bh,
            (bw * 0.8).max(0.5),
            bh,
            esc(&format::plural(*v, "event")),
            esc(&format::utc(t0)),
        ));
    }
    s.push_str(&format!(
        r#"</svg><figcaption class="axis-labels"><span title="{}">{}</span><span class="mid">one bar: {} · highest: {}</span><span>now</span></figcaption></figure>"#,
        esc(&format::utc(since)),
        esc(&format::ago(since, now)),
        esc(&format::span(step)),
        esc(&format::count(max as u64)),
    ));
    s
}

/// A small inline chart for a stream row.
pub fn sparkline(values: &[u64]) -> String {
    if values.is_empty() {
        return String::new();
    }
    let (w, h) = (96.0, 22.0);
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bw = w / values.len() as f64;
    let mut s = format!(r#"<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" aria-hidden="true">"#);
    for (i, v) in values.iter().enumerate() {
        if *v == 0 {
            continue;
        }
        let bh = (*v as f64 / max * h).max(1.5);
        s.push_str(&format!(r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}"/>"#, i as f64 * bw, h - bh, (bw - 1.0).max(1.0), bh));
    }
    s.push_str("</svg>");
    s
}

/// A duration histogram (log scale) with the average and p95 marked by dashed lines, named in
/// a legend above the bars so that the words never cover them.
pub fn histogram(bars: &[HistogramBar], avg: f64, p95: f64) -> String {
    if bars.is_empty() {
        return String::new();
    }
    let (w, h) = (720.0, 120.0);
    let max = bars.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    let (lo, hi) = (bars[0].lower_ms.max(0.5).log2(), bars[bars.len() - 1].upper_ms.max(1.0).log2());
    let span = (hi - lo).max(0.1);
    let x = |ms: f64| ((ms.max(0.5).log2() - lo) / span * w).clamp(0.0, w);
    let mut s = format!(
        r#"<figure class="chart"><figcaption class="legend"><span class="key avg">avg {}</span><span class="key p95">p95 {}</span></figcaption><svg viewBox="0 0 {w} {h}" preserveAspectRatio="none" role="img" aria-label="Duration histogram"><title>Duration histogram</title>"#,
        esc(&format::ms(avg)),
        esc(&format::ms(p95)),
    );
    s.push_str(&format!(r#"<line class="axis" x1="0" y1="{h}" x2="{w}" y2="{h}" vector-effect="non-scaling-stroke"/>"#));
    for b in bars {
        let x0 = x(b.lower_ms.max(0.5));
        let x1 = x(b.upper_ms);
        let bh = (b.count as f64 / max * (h - 4.0)).max(2.0);
        s.push_str(&format!(
            r#"<rect x="{x0:.2}" y="{:.2}" width="{:.2}" height="{bh:.2}"><title>{} between {} and {}</title></rect>"#,
            h - bh,
            (x1 - x0 - 1.0).max(2.0),
            b.count,
            esc(&format::ms(b.lower_ms)),
            esc(&format::ms(b.upper_ms)),
        ));
    }
    for (v, class) in [(avg, "mark avg"), (p95, "mark p95")] {
        let xv = x(v);
        s.push_str(&format!(r#"<line class="{class}" x1="{xv:.2}" y1="0" x2="{xv:.2}" y2="{h}" vector-effect="non-scaling-stroke"/>"#));
    }
    s.push_str(&format!(
        r#"</svg><figcaption class="axis-labels"><span>{}</span><span class="mid">log scale</span><span>{}</span></figcaption></figure>"#,
        esc(&format::ms(bars[0].lower_ms)),
        esc(&format::ms(bars[bars.len() - 1].upper_ms))
    ));
    s
}

/// A horizontal bar showing `part` of `total`.
pub fn share_bar(part: u64, total: u64) -> String {
    let pct = if total == 0 { 0.0 } else { part as f64 / total as f64 * 100.0 };
    format!(
        r#"<svg class="share" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true"><rect class="bg" x="0" y="0" width="100" height="8"/><rect x="0" y="0" width="{pct:.2}" height="8"/></svg>"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_and_draw() {
        let s = bars(&[0, 3, 1], 0.0, 180.0, "<b>x</b>");
        assert!(s.contains("&lt;b&gt;x&lt;/b&gt;") && !s.contains("<b>"));
        assert_eq!(s.matches("<rect").count(), 3);
        assert!(s.contains("one bar: 1 min · highest: 3"), "{s}");
        assert_eq!(sparkline(&[0, 1, 2]).matches("<rect").count(), 2);
        let h = histogram(&[HistogramBar { lower_ms: 8.0, upper_ms: 8.7, count: 3 }], 8.2, 8.5);
        assert!(h.contains("p95 8.5 ms") && h.contains("avg 8.2 ms"), "{h}");
    }

    /// Text inside a stretched SVG is squashed on a phone and drawn out on a wide screen.
    #[test]
    fn stretched_charts_carry_no_svg_text() {
        let hist = histogram(&[HistogramBar { lower_ms: 1.0, upper_ms: 2.0, count: 1 }, HistogramBar { lower_ms: 2.0, upper_ms: 4.0, count: 5 }], 2.5, 3.9);
        for chart in [bars(&[1, 2, 3], 0.0, 3600.0, "t"), hist] {
            let svg = &chart[chart.find("<svg").unwrap()..chart.find("</svg>").unwrap()];
            assert!(svg.contains(r#"preserveAspectRatio="none""#));
            assert!(!svg.contains("<text"), "{svg}");
        }
    }

    #[test]
    fn a_chart_starts_near_its_first_event() {
        let now = 100_000.0;
        let day = now - 86_400.0;
        // A fresh install: the first event 2 minutes ago; the chart covers the last 15 minutes.
        assert_eq!(chart_start(day, now, Some(now - 120.0)), now - 900.0);
        // Events since 4 hours ago: 5 hours, so the first one is not at the left edge.
        assert_eq!(chart_start(day, now, Some(now - 4.0 * 3600.0)), now - 5.0 * 3600.0);
        // Older data, or none at all: the whole interval.
        assert_eq!(chart_start(day, now, Some(day - 10.0)), day);
        assert_eq!(chart_start(day, now, Some(now - 80_000.0)), day);
        assert_eq!(chart_start(day, now, None), day);
        assert_eq!(first_bar(&[0, 0, 4, 1], 0.0, 400.0), Some(200.0));
        assert_eq!(first_bar(&[0, 0], 0.0, 400.0), None);
    }
}
