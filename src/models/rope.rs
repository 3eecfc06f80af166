//! RoPE frequencies with YaRN scaling, computed in f32 in the same order of operations as the
//! Hugging Face reference (so angles round the same way), and cos/sin per position.

use super::config::Config;

pub struct Rope {
    pub inv_freq: Vec<f32>,
    /// YaRN "concentration": multiplies cos and sin (so q.k by its square).
    pub attention_factor: f32,
}

impl Rope {
    pub fn new(cfg: &Config) -> Rope {
        let dim = cfg.head_dim as usize;
        let base = cfg.rope_scaling.as_ref().and_then(|r| r.rope_theta).unwrap_or(cfg.rope_theta) as f32;
        let pos_freqs: Vec<f32> = (0..dim / 2).map(|i| base.powf((2 * i) as f32 / dim as f32)).collect();
        let Some(rs) = cfg.rope_scaling.as_ref() else {
            return Rope { inv_freq: pos_freqs.iter().map(|p| 1.0 / p).collect(), attention_factor: 1.0 };
        };
        let mut factor = rs.factor;
        let orig = rs.original_max_position_embeddings.unwrap_or(cfg.max_position_embeddings as u64) as f64;
        if rs.original_max_position_embeddings.is_some() {
            factor = cfg.max_position_embeddings as f64 / orig;
        }
        let attention_factor = rs.attention_factor.unwrap_or(if factor <= 1.0 { 1.0 } else { 0.1 * factor.ln() + 1.0 });
        let (beta_fast, beta_slow) = (rs.beta_fast.unwrap_or(32.0), rs.beta_slow.unwrap_or(1.0));
        let correction_dim = |rot: f64| {
            (dim as f64 * (orig / (rot * 2.0 * std::f64::consts::PI)).ln()) / (2.0 * (base as f64).ln())
        };
        let (mut low, mut high) = (correction_dim(beta_fast), correction_dim(beta_slow));
        if rs.truncate {
            low = low.floor();
            high = high.ceil();
        }
        let (low, mut high) = (low.max(0.0), high.min(dim as f64 - 1.0));
        if low == high {
            high += 0.001;
        }
        let (low32, span32) = (low as f32, (high - low) as f32);
        let inv_freq = pos_freqs
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let ramp = ((i as f32 - low32) / span32).clamp(0.0, 1.0);
                let extrapolation = 1.0 - ramp;
                let inv_extra = 1.0 / p;
                let inv_inter = 1.0 / (factor as f32 * p);
                inv_inter * (1.0 - extrapolation) + inv_extra * extrapolation
            })
            .collect();
        Rope { inv_freq, attention_factor: attention_factor as f32 }
    }

    /// Divides each frequency by its factor (a file's per-frequency scaling, named `what`).
    pub fn divide_by(&mut self, what: &str, factors: &[f32]) -> crate::error::Result<()> {
        if factors.len() != self.inv_freq.len() {
            return Err(crate::error::Error::tensor(what, format!("{} factors for {} frequencies", factors.len(), self.inv_freq.len())));
        }
        for (v, f) in self.inv_freq.iter_mut().zip(factors) {
            *v /= f;
        }
        Ok(())
    }

    /// [n, head_dim/2, 2] interleaved (cos, sin) for positions pos0..pos0+n, concentration included.
    pub fn cos_sin(&self, pos0: u32, n: u32) -> Vec<f32> {
        let mut out = Vec::with_capacity(n as usize * self.inv_freq.len() * 2);
        for p in pos0..pos0 + n {
            for &f in &self.inv_freq {
                let angle = (p as f32 * f) as f64;
                out.push(angle.cos() as f32 * self.attention_factor);
                out.push(angle.sin() as f32 * self.attention_factor);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yarn_matches_published_gpt_oss_20b_constants() {
        let cfg = crate::models::gpt_oss::config::from_json(
            r#"{"model_type":"gpt_oss","vocab_size":201088,"hidden_size":2880,"intermediate_size":2880,
            "num_hidden_layers":24,"num_attention_heads":64,"num_key_value_heads":8,"head_dim":64,
            "num_local_experts":32,"num_experts_per_tok":4,"sliding_window":128,"rope_theta":150000,
            "max_position_embeddings":131072,"quantization_config":{"quant_method":"mxfp4"},
            "rope_scaling":{"rope_type":"yarn","factor":32.0,"beta_fast":32.0,"beta_slow":1.0,
            "original_max_position_embeddings":4096,"truncate":false}}"#,
        )
        .unwrap();
        let r = Rope::new(&cfg);
        assert!((r.attention_factor - 1.346_573_6).abs() < 1e-6);
        // Spec values (f64): first, blended middle and last entries.
        for (i, want) in [(0, 1.0), (9, 3.170570e-02), (17, 1.293187e-04), (31, 3.023511e-07)] {
            let got = r.inv_freq[i] as f64;
            assert!((got - want).abs() / want < 1e-5, "inv_freq[{i}] = {got}, want {want}");
        }
    }
}
