//! Charts as SVG, rendered on the server: event-rate bars, sparklines, duration histograms and
//! tag distribution bars. Every piece of text in them is escaped; the output is inserted into
//! pages as markup.

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

/// A bar chart of counts over time (`values` in order), with the start and end labels under it
/// and each bar's count and time span in a tooltip.
pub fn bars(values: &[u64], since: f64, now: f64, title: &str) -> String {
    let (w, h, pad) = (720.0, 120.0, 18.0);
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = values.len().max(1) as f64;
    let bw = w / n;
    let step = (now - since) / n;
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {}" preserveAspectRatio="none" role="img" aria-label="{}"><title>{}</title>"#,
        h + pad,
        esc(title),
        esc(title)
    );
    s.push_str(&format!(r#"<line class="axis" x1="0" y1="{h}" x2="{w}" y2="{h}"/>"#));
    for (i, v) in values.iter().enumerate() {
        let bh = (*v as f64 / max * (h - 4.0)).max(if *v > 0 { 2.0 } else { 0.0 });
        let t0 = since + step * i as f64;
        s.push_str(&format!(
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}"><title>{} events, {}</title></rect>"#,
            i as f64 * bw + 1.0,
            h - bh,
            (bw - 2.0).max(1.0),
            bh,
            v,
            esc(&format::utc(t0)),
        ));
    }
    s.push_str(&format!(
        r#"<text x="0" y="{}" class="label">{}</text><text x="{w}" y="{}" class="label end">now · max {}</text></svg>"#,
        h + pad - 4.0,
        esc(&format::utc(since)),
        h + pad - 4.0,
        max as u64
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

/// A duration histogram with the average and p95 marked.
pub fn histogram(bars: &[HistogramBar], avg: f64, p95: f64) -> String {
    if bars.is_empty() {
        return String::new();
    }
    let (w, h, pad) = (720.0, 120.0, 18.0);
    let max = bars.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    let (lo, hi) = (bars[0].lower_ms.max(0.5).log2(), bars[bars.len() - 1].upper_ms.max(1.0).log2());
    let span = (hi - lo).max(0.1);
    let x = |ms: f64| ((ms.max(0.5).log2() - lo) / span * w).clamp(0.0, w);
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {}" preserveAspectRatio="none" role="img" aria-label="Duration histogram"><title>Duration histogram</title>"#,
        h + pad
    );
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
    for (label, v, class) in [("avg", avg, "mark avg"), ("p95", p95, "mark p95")] {
        let xv = x(v);
        s.push_str(&format!(
            r#"<line class="{class}" x1="{xv:.2}" y1="0" x2="{xv:.2}" y2="{h}"/><text class="label" x="{:.2}" y="12">{label} {}</text>"#,
            (xv + 3.0).min(w - 80.0),
            esc(&format::ms(v))
        ));
    }
    s.push_str(&format!(
        r#"<text x="0" y="{}" class="label">{}</text><text x="{w}" y="{}" class="label end">{}</text></svg>"#,
        h + pad - 4.0,
        esc(&format::ms(bars[0].lower_ms)),
        h + pad - 4.0,
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
        assert_eq!(sparkline(&[0, 1, 2]).matches("<rect").count(), 2);
        let h = histogram(&[HistogramBar { lower_ms: 8.0, upper_ms: 8.7, count: 3 }], 8.2, 8.5);
        assert!(h.contains("p95"));
    }
}
