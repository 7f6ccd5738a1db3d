//! The mel filterbank whisper.cpp needs in its model file, computed as Whisper's own
//! (`librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)`: Slaney mel scale, Slaney area
//! normalisation), so no file has to come from elsewhere.

// The Slaney mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    (6.4f64).ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// Row-major `n_mels x (n_fft / 2 + 1)` triangular filters.
pub fn mel_filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    mel_filters_f64(sample_rate, n_fft, n_mels).into_iter().map(|v| v as f32).collect()
}

/// [`mel_filters`] at full precision (for features computed in f64, as the references do).
pub fn mel_filters_f64(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f64> {
    let n_freqs = n_fft / 2 + 1;
    let nyquist = sample_rate as f64 / 2.0;
    let fft_freqs: Vec<f64> = (0..n_freqs).map(|i| i as f64 * nyquist / (n_freqs - 1) as f64).collect();
    let (mel_lo, mel_hi) = (hz_to_mel(0.0), hz_to_mel(nyquist));
    let mel_points: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_lo + (mel_hi - mel_lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = vec![0f64; n_mels * n_freqs];
    for m in 0..n_mels {
        let (left, center, right) = (mel_points[m], mel_points[m + 1], mel_points[m + 2]);
        let enorm = 2.0 / (right - left);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - left) / (center - left);
            let upper = (right - f) / (right - center);
            out[m * n_freqs + k] = lower.min(upper).max(0.0) * enorm;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_librosa_reference_values() {
        // Reference values read from openai-whisper's own `assets/mel_filters.npz` (`mel_80`).
        let f = mel_filters(16000, 400, 80);
        assert_eq!(f.len(), 80 * 201);
        let at = |m: usize, k: usize| f[m * 201 + k];
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6 * b.abs().max(1e-3);
        assert!(close(at(0, 1), 0.024_862_595), "{}", at(0, 1));
        assert!(close(at(1, 2), 0.022_871_772), "{}", at(1, 2));
        assert!(close(at(40, 42), 0.005_411_104_8), "{}", at(40, 42));
        assert!(close(at(40, 43), 0.014_735_566), "{}", at(40, 43));
        assert!(close(at(40, 44), 0.006_518_19), "{}", at(40, 44));
        assert_eq!(at(40, 41), 0.0);
        assert_eq!(at(40, 45), 0.0);
        let last_max = f[79 * 201..].iter().cloned().fold(0.0, f32::max);
        assert!(close(last_max, 0.003_164_711_9), "{last_max}");
        let sum: f32 = f.iter().sum();
        assert!((sum - 1.999_024_2).abs() < 1e-4, "{sum}");
        assert_eq!(at(0, 0), 0.0);
        // Each filter is a triangle: non-negative, one peak.
        for m in 0..80 {
            let row = &f[m * 201..(m + 1) * 201];
            assert!(row.iter().all(|&v| v >= 0.0));
            assert!(row.iter().any(|&v| v > 0.0), "filter {m} is empty");
        }
    }
}
