//! Training of the heads (used by the `train-heads` binary): multinomial logistic regression
//! with L2, full-batch Adam on standardised features, and temperature scaling on dev.
//!
//! Full batch on ~2k examples is seconds per head and gives the same weights for the same
//! data every run (no shuffling, zero initialisation): retraining is reproducible.

use crate::heads::{Head, Layer, softmax};

/// A dense row-major matrix of examples × features.
pub struct Matrix {
    /// Rows × cols values.
    pub data: Vec<f32>,
    /// Number of columns.
    pub cols: usize,
}

impl Matrix {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.cols).unwrap_or(0)
    }

    /// Stacks rows.
    pub fn from_rows(rows: &[Vec<f32>], cols: usize) -> Self {
        let mut data = Vec::with_capacity(rows.len() * cols);
        for r in rows {
            data.extend_from_slice(r);
        }
        Self { data, cols }
    }
}

/// Per-column mean and standard deviation (floored, so constant columns stay finite).
pub fn standardizer(x: &Matrix) -> (Vec<f32>, Vec<f32>) {
    let n = x.rows().max(1) as f32;
    let mut mean = vec![0.0f32; x.cols];
    for i in 0..x.rows() {
        for (m, v) in mean.iter_mut().zip(x.row(i)) {
            *m += v / n;
        }
    }
    let mut var = vec![0.0f32; x.cols];
    for i in 0..x.rows() {
        for ((s, v), m) in var.iter_mut().zip(x.row(i)).zip(&mean) {
            *s += (v - m) * (v - m) / n;
        }
    }
    (mean, var.into_iter().map(|v| v.sqrt().max(1e-3)).collect())
}

/// Applies a standardizer in place.
pub fn standardize(x: &mut Matrix, mean: &[f32], scale: &[f32]) {
    let cols = x.cols;
    for row in x.data.chunks_mut(cols) {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(scale) {
            *v = (*v - m) / s;
        }
    }
}

/// Training settings of one head.
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    /// L2 penalty on weights (not biases).
    pub l2: f32,
    /// Adam steps.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f32,
    /// Per-class loss weights are balanced (inverse frequency) when true.
    pub balanced: bool,
}

/// Trains a head on standardised `x` with labels `y` in `0..k`: softmax regression when
/// `hidden == 0`, else one ReLU layer of that width. Full-batch Adam with candle's autograd
/// (the matrix products are what make a few hundred full passes take seconds).
pub fn fit_head(
    x: &Matrix,
    y: &[usize],
    labels: &[&str],
    fit: Fit,
    hidden: usize,
    mut progress: impl FnMut(usize, f32),
) -> crate::Result<Head> {
    use candle_core::{D, DType, Device, Tensor, Var};
    use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
    let err = |e: candle_core::Error| crate::Error::Inference(format!("training: {e}"));
    let (n, d, k) = (x.rows(), x.cols, labels.len());
    let dev = Device::Cpu;
    let xt = Tensor::from_slice(&x.data, (n, d), &dev).map_err(err)?;
    let yt = Tensor::from_vec(y.iter().map(|&c| c as u32).collect::<Vec<_>>(), (n, 1), &dev).map_err(err)?;
    let mut counts = vec![0usize; k];
    y.iter().for_each(|&c| counts[c] += 1);
    let cw: Vec<f32> =
        counts.iter().map(|&c| if fit.balanced && c > 0 { n as f32 / (k as f32 * c as f32) } else { 1.0 }).collect();
    let row_w: Vec<f32> = y.iter().map(|&c| cw[c]).collect();
    let total: f32 = row_w.iter().sum();
    let wt = Tensor::from_vec(row_w.into_iter().map(|v| v / total).collect::<Vec<_>>(), (n, 1), &dev).map_err(err)?;
    // Deterministic initialisation: a fixed-seed generator, so retraining is reproducible.
    let mut rng = SplitMix(0x7269_6167_6531);
    let init = |rows: usize, cols: usize, scale: f32, rng: &mut SplitMix| -> crate::Result<Var> {
        let v: Vec<f32> = (0..rows * cols).map(|_| scale * rng.normal()).collect();
        Var::from_vec(v, (rows, cols), &dev).map_err(err)
    };
    let (w1, b1) = if hidden > 0 {
        (
            Some(init(hidden, d, (2.0 / d as f32).sqrt(), &mut rng)?),
            Some(Var::zeros(hidden, DType::F32, &dev).map_err(err)?),
        )
    } else {
        (None, None)
    };
    let w2 = init(k, if hidden > 0 { hidden } else { d }, 0.0, &mut rng)?;
    let b2 = Var::zeros(k, DType::F32, &dev).map_err(err)?;
    let mut vars = vec![w2.clone(), b2.clone()];
    vars.extend(w1.iter().cloned());
    vars.extend(b1.iter().cloned());
    let params = ParamsAdamW { lr: f64::from(fit.lr), weight_decay: 0.0, ..Default::default() };
    let mut opt = AdamW::new(vars, params).map_err(err)?;
    for step in 1..=fit.steps {
        let a = match (&w1, &b1) {
            (Some(w1), Some(b1)) => {
                xt.matmul(&w1.t().map_err(err)?).map_err(err)?.broadcast_add(b1).map_err(err)?.relu().map_err(err)?
            }
            _ => xt.clone(),
        };
        let logits = a.matmul(&w2.t().map_err(err)?).map_err(err)?.broadcast_add(&b2).map_err(err)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1).map_err(err)?;
        let picked = logp.gather(&yt, 1).map_err(err)?;
        let nll = (picked * &wt).map_err(err)?.sum_all().map_err(err)?.neg().map_err(err)?;
        let mut l2 = w2.sqr().map_err(err)?.sum_all().map_err(err)?;
        if let Some(w1) = &w1 {
            l2 = (l2 + w1.sqr().map_err(err)?.sum_all().map_err(err)?).map_err(err)?;
        }
        let loss = (nll + (l2 * f64::from(0.5 * fit.l2)).map_err(err)?).map_err(err)?;
        opt.backward_step(&loss).map_err(err)?;
        if step % 50 == 0 || step == fit.steps {
            progress(step, loss.to_scalar::<f32>().map_err(err)?);
        }
    }
    let to_layer = |w: &Var, b: &Var| -> crate::Result<Layer> {
        Ok(Layer { w: w.to_vec2::<f32>().map_err(err)?, b: b.to_vec1::<f32>().map_err(err)? })
    };
    let hidden_layer = match (&w1, &b1) {
        (Some(w1), Some(b1)) => Some(to_layer(w1, b1)?),
        _ => None,
    };
    Ok(Head {
        labels: labels.iter().map(|s| s.to_string()).collect(),
        hidden: hidden_layer,
        out: to_layer(&w2, &b2)?,
        temperature: 1.0,
    })
}

/// SplitMix64 with Box-Muller: a tiny deterministic normal generator for initialisation.
struct SplitMix(u64);

impl SplitMix {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    fn normal(&mut self) -> f32 {
        let (u, v) = (self.next_f32(), self.next_f32());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// Mean negative log-likelihood of `y` under `head` at temperature `t`.
pub fn nll(head: &Head, x: &Matrix, y: &[usize], t: f32) -> f32 {
    let n = x.rows().max(1) as f32;
    (0..x.rows()).map(|i| -softmax(&head.logits(x.row(i)), t)[y[i]].max(1e-12).ln()).sum::<f32>() / n
}

/// Temperature minimising dev NLL, by a log-spaced grid then a finer one around the best.
pub fn fit_temperature(head: &Head, x: &Matrix, y: &[usize]) -> f32 {
    let logits: Vec<Vec<f32>> = (0..x.rows()).map(|i| head.logits(x.row(i))).collect();
    let loss = |t: f32| -> f32 { logits.iter().zip(y).map(|(l, &c)| -softmax(l, t)[c].max(1e-12).ln()).sum::<f32>() };
    let mut best = (1.0f32, f32::INFINITY);
    for i in 0..=60 {
        let t = 0.2 * (50.0f32).powf(i as f32 / 60.0); // 0.2 .. 10
        let l = loss(t);
        if l < best.1 {
            best = (t, l);
        }
    }
    let centre = best.0;
    for i in 0..=40 {
        let t = centre * (0.85 + 0.3 * i as f32 / 40.0);
        let l = loss(t);
        if l < best.1 {
            best = (t, l);
        }
    }
    best.0
}

/// Accuracy of `head` on (x, y).
pub fn accuracy(head: &Head, x: &Matrix, y: &[usize]) -> f32 {
    let n = x.rows().max(1) as f32;
    (0..x.rows()).filter(|&i| crate::heads::argmax(&head.logits(x.row(i))).0 == y[i]).count() as f32 / n
}
