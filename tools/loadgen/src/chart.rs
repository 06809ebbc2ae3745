//! Line charts rasterized into indexed PNGs (see `png.rs`, `font.rs`).

use crate::{font, png};

const PALETTE: [[u8; 3]; 10] = [
    [255, 255, 255], // 0 background
    [30, 30, 30],    // 1 text, axes
    [225, 225, 225], // 2 grid
    [0, 114, 178],   // 3 blue
    [213, 94, 0],    // 4 vermillion
    [0, 158, 115],   // 5 green
    [204, 121, 167], // 6 purple
    [230, 159, 0],   // 7 orange
    [86, 180, 233],  // 8 sky
    [120, 120, 120], // 9 grey
];

/// Palette index of the n-th series colour.
pub fn series_color(n: usize) -> u8 {
    3 + (n % 7) as u8
}

struct Canvas {
    w: i32,
    h: i32,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: i32, h: i32) -> Self {
        Canvas {
            w,
            h,
            px: vec![0; (w * h) as usize],
        }
    }
    fn set(&mut self, x: i32, y: i32, c: u8) {
        if x >= 0 && y >= 0 && x < self.w && y < self.h {
            self.px[(y * self.w + x) as usize] = c;
        }
    }
    fn rect(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, c: u8) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.set(x, y, c);
            }
        }
    }
    /// A line `thick` pixels wide; `dash` > 0 draws dashes of that length.
    #[allow(clippy::too_many_arguments)]
    fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: u8, thick: i32, dash: i32) {
        let n = ((x1 - x0).abs().max((y1 - y0).abs())).ceil().max(1.0) as i32;
        for i in 0..=n {
            if dash > 0 && (i / dash) % 2 == 1 {
                continue;
            }
            let t = i as f64 / n as f64;
            let x = (x0 + (x1 - x0) * t).round() as i32;
            let y = (y0 + (y1 - y0) * t).round() as i32;
            let r = thick / 2;
            self.rect(x - r, y - r, x - r + thick - 1, y - r + thick - 1, c);
        }
    }
    fn text_width(s: &str, scale: i32) -> i32 {
        s.chars().count() as i32 * 6 * scale
    }
    fn text(&mut self, x: i32, y: i32, s: &str, scale: i32, c: u8) {
        let mut cx = x;
        for ch in s.chars() {
            let g = font::glyph(ch).or_else(|| font::glyph('*')).unwrap();
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (1 << (4 - col)) != 0 {
                        self.rect(
                            cx + col * scale,
                            y + row as i32 * scale,
                            cx + col * scale + scale - 1,
                            y + row as i32 * scale + scale - 1,
                            c,
                        );
                    }
                }
            }
            cx += 6 * scale;
        }
    }
}

/// One line of a chart.
pub struct Series {
    /// legend text
    pub label: String,
    /// palette index (see [`series_color`])
    pub color: u8,
    /// dashed line
    pub dashed: bool,
    /// (x, y); x is a category index when the chart has categories
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
pub struct LineChart {
    /// title (top)
    pub title: String,
    /// x axis label
    pub x_label: String,
    /// y axis label
    pub y_label: String,
    /// categorical x: labels at x = 0, 1, 2, …
    pub categories: Option<Vec<String>>,
    /// log10 y axis
    pub log_y: bool,
    /// lines
    pub series: Vec<Series>,
}

fn nice_step(range: f64, n: f64) -> f64 {
    let raw = range / n;
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    p * if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    }
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 && (v / 1000.0).fract() == 0.0 {
        format!("{}K", v / 1000.0)
    } else if v.abs() >= 1.0 && v.fract() == 0.0 {
        format!("{v}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl LineChart {
    /// Render to PNG bytes.
    pub fn png(&self, w: i32, h: i32) -> Vec<u8> {
        let mut c = Canvas::new(w, h);
        let (left, right, top, bottom) = (80, 24, 56, 64);
        let (pw, ph) = (w - left - right, h - top - bottom);
        c.text(
            (w - Canvas::text_width(&self.title, 2)) / 2,
            12,
            &self.title,
            2,
            1,
        );
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|p| p.1.is_finite())
            .collect();
        let (mut xmin, mut xmax) = match &self.categories {
            Some(cats) => (-0.5, cats.len() as f64 - 0.5),
            None => (0.0, pts.iter().map(|p| p.0).fold(1.0, f64::max)),
        };
        if xmax <= xmin {
            xmax = xmin + 1.0;
        }
        if self.categories.is_none() {
            xmin = 0.0;
        }
        let ymax_raw = pts.iter().map(|p| p.1).fold(f64::MIN, f64::max).max(1e-9);
        let ymin_raw = pts.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        let (ylo, yhi, ticks): (f64, f64, Vec<f64>) = if self.log_y {
            let lo = ymin_raw.max(1e-3).log10().floor();
            let hi = ymax_raw.max(1e-3).log10().ceil().max(lo + 1.0);
            let t = (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect();
            (lo, hi, t)
        } else {
            let step = nice_step(ymax_raw * 1.1, 5.0);
            let hi = (ymax_raw * 1.05 / step).ceil() * step;
            let t = (0..=((hi / step).round() as i32))
                .map(|i| i as f64 * step)
                .collect();
            (0.0, hi, t)
        };
        let ty = |v: f64| -> f64 {
            let u = if self.log_y {
                (v.max(1e-9).log10() - ylo) / (yhi - ylo)
            } else {
                (v - ylo) / (yhi - ylo)
            };
            top as f64 + ph as f64 * (1.0 - u.clamp(-0.02, 1.02))
        };
        let tx = |v: f64| -> f64 { left as f64 + pw as f64 * (v - xmin) / (xmax - xmin) };
        // grid and y ticks
        for &t in &ticks {
            let y = ty(t).round() as i32;
            c.rect(left, y, left + pw, y, 2);
            let s = fmt_tick(t);
            c.text(left - 8 - Canvas::text_width(&s, 1) - 2, y - 3, &s, 1, 1);
        }
        // x ticks
        match &self.categories {
            Some(cats) => {
                for (i, l) in cats.iter().enumerate() {
                    let x = tx(i as f64).round() as i32;
                    c.rect(x, top + ph, x, top + ph + 4, 1);
                    c.text(x - Canvas::text_width(l, 1) / 2, top + ph + 10, l, 1, 1);
                }
            }
            None => {
                let step = nice_step(xmax - xmin, 6.0);
                let mut v = 0.0;
                while v <= xmax + 1e-9 {
                    let x = tx(v).round() as i32;
                    c.rect(x, top, x, top + ph, 2);
                    c.rect(x, top + ph, x, top + ph + 4, 1);
                    let s = fmt_tick(v);
                    c.text(x - Canvas::text_width(&s, 1) / 2, top + ph + 10, &s, 1, 1);
                    v += step;
                }
            }
        }
        // axes
        c.rect(left, top, left, top + ph, 1);
        c.rect(left, top + ph, left + pw, top + ph, 1);
        c.text(
            left + (pw - Canvas::text_width(&self.x_label, 1)) / 2,
            top + ph + 30,
            &self.x_label,
            1,
            1,
        );
        c.text(8, top - 16, &self.y_label, 1, 1);
        // series
        for s in &self.series {
            let p: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|p| p.1.is_finite())
                .map(|&(x, y)| (tx(x), ty(y)))
                .collect();
            for wnd in p.windows(2) {
                c.line(
                    wnd[0].0,
                    wnd[0].1,
                    wnd[1].0,
                    wnd[1].1,
                    s.color,
                    2,
                    if s.dashed { 6 } else { 0 },
                );
            }
            for &(x, y) in &p {
                let (x, y) = (x.round() as i32, y.round() as i32);
                c.rect(x - 3, y - 3, x + 3, y + 3, s.color);
            }
        }
        // legend (top left inside the plot)
        let mut ly = top + 8;
        let lw = self
            .series
            .iter()
            .map(|s| Canvas::text_width(&s.label, 1))
            .max()
            .unwrap_or(0)
            + 40;
        c.rect(
            left + 8,
            top + 4,
            left + 8 + lw,
            top + 8 + 14 * self.series.len() as i32,
            0,
        );
        for s in &self.series {
            c.line(
                (left + 14) as f64,
                (ly + 3) as f64,
                (left + 36) as f64,
                (ly + 3) as f64,
                s.color,
                2,
                if s.dashed { 4 } else { 0 },
            );
            c.text(left + 42, ly, &s.label, 1, 1);
            ly += 14;
        }
        png::encode(w as u32, h as u32, &c.px, &PALETTE)
    }
}
