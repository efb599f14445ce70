//! Figures a scenario can draw: named series of points, kept as data so
//! that scenarios stay free of drawing code (`swim-lab` draws them as SVG).

/// One line of a chart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points `(x, y)`, in increasing `x`.
    pub points: Vec<(f64, f64)>,
}

/// A chart: several series on shared axes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

impl Chart {
    /// An empty chart with its title and axis labels.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Chart { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), series: Vec::new() }
    }

    /// Adds a line.
    pub fn line(mut self, name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series { name: name.into(), points });
        self
    }
}

/// The empirical CDF of `values` as step points `(value, fraction ≤ value)`;
/// `total` counts runs that never reached a value (they keep the curve
/// below 1).
pub fn cdf(values: &[u64], total: usize) -> Vec<(f64, f64)> {
    let mut v = values.to_vec();
    v.sort_unstable();
    let total = total.max(v.len()).max(1) as f64;
    let mut out = Vec::with_capacity(2 * v.len() + 1);
    out.push((v.first().copied().unwrap_or(0) as f64, 0.0));
    for (k, &x) in v.iter().enumerate() {
        out.push((x as f64, k as f64 / total));
        out.push((x as f64, (k + 1) as f64 / total));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cdf_steps_up_at_each_value_and_stays_below_one_for_misses() {
        let c = cdf(&[30, 10, 20], 4);
        assert_eq!(c.first(), Some(&(10.0, 0.0)));
        assert_eq!(c.last(), Some(&(30.0, 0.75)));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }
}
