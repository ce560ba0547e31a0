use super::*;

#[test]
fn histogram_renders_cumulative_buckets() {
    let h = Histogram::default();
    h.observe(Duration::from_millis(3));
    h.observe(Duration::from_millis(300));
    let mut out = String::new();
    h.render(&mut out, "x", "flow=\"a\"");
    assert!(out.contains("x_bucket{flow=\"a\",le=\"0.005\"} 1\n"), "{out}");
    assert!(out.contains("x_bucket{flow=\"a\",le=\"0.5\"} 2\n"), "{out}");
    assert!(out.contains("x_bucket{flow=\"a\",le=\"+Inf\"} 2\n"), "{out}");
    assert!(out.contains("x_count{flow=\"a\"} 2\n"), "{out}");
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}
