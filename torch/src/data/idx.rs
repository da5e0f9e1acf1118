//! The IDX format of MNIST and Fashion-MNIST, plain or gzip.
//!
//! A file starts with a big-endian u32 magic number: two zero bytes, a type
//! byte (0x08 is unsigned byte, the only type MNIST uses) and the number of
//! dimensions. One big-endian u32 size per dimension follows, then the data in
//! C order. Images are 0x00000803 (count, rows, columns) and labels are
//! 0x00000801 (count).

use std::path::Path;

use anyhow::{bail, Result};

use super::{file_name, read_maybe_gzip, U8Array};

/// The type byte of unsigned bytes.
const TYPE_U8: u8 = 0x08;

/// Reads an IDX file of images, such as `train-images-idx3-ubyte.gz`, as an
/// array of shape `[count, rows, columns]`.
pub fn read_idx_images(path: &Path) -> Result<U8Array> {
    read_idx(path, 3)
}

/// Reads an IDX file of labels, such as `train-labels-idx1-ubyte.gz`, as an
/// array of shape `[count]`.
pub fn read_idx_labels(path: &Path) -> Result<U8Array> {
    read_idx(path, 1)
}

/// Reads an IDX file of unsigned bytes with `dimensions` dimensions.
pub fn read_idx(path: &Path, dimensions: u8) -> Result<U8Array> {
    let bytes = read_maybe_gzip(path)?;
    parse_idx(&bytes, dimensions, &file_name(path))
}

fn parse_idx(bytes: &[u8], dimensions: u8, name: &str) -> Result<U8Array> {
    let expected_magic = u32::from_be_bytes([0, 0, TYPE_U8, dimensions]);
    let Some(magic) = read_u32(bytes, 0) else {
        bail!(
            "`{name}` is {} bytes long, too short for an IDX header",
            bytes.len()
        );
    };
    if magic != expected_magic {
        bail!(
            "`{name}` byte 0: magic number {magic:#010x} is not {expected_magic:#010x} \
             ({}; the type byte must be {TYPE_U8:#04x} and the dimension count {dimensions})",
            describe(expected_magic)
        );
    }
    let shape = read_shape(bytes, dimensions, name)?;
    let offset = 4 + 4 * usize::from(dimensions);
    let expected_len = shape
        .iter()
        .try_fold(1usize, |len, &size| len.checked_mul(size));
    let found_len = bytes.len() - offset;
    if expected_len != Some(found_len) {
        let sizes: Vec<String> = shape.iter().map(usize::to_string).collect();
        bail!(
            "`{name}`: the header gives sizes {}, so {} bytes of data should follow byte {offset}, \
             but {found_len} do",
            sizes.join(" x "),
            expected_len.map_or_else(|| "more than usize::MAX".to_string(), |len| len.to_string()),
        );
    }
    Ok(U8Array {
        shape,
        data: bytes[offset..].to_vec(),
    })
}

fn read_shape(bytes: &[u8], dimensions: u8, name: &str) -> Result<Vec<usize>> {
    let mut shape = Vec::with_capacity(usize::from(dimensions));
    for dimension in 0..usize::from(dimensions) {
        let position = 4 + 4 * dimension;
        let Some(size) = read_u32(bytes, position) else {
            bail!(
                "`{name}` ends at byte {} inside the IDX header, which is {} bytes long",
                bytes.len(),
                4 + 4 * usize::from(dimensions)
            );
        };
        shape.push(size as usize);
    }
    Ok(shape)
}

fn read_u32(bytes: &[u8], position: usize) -> Option<u32> {
    let word = bytes.get(position..position + 4)?;
    Some(u32::from_be_bytes(word.try_into().ok()?))
}

fn describe(magic: u32) -> &'static str {
    match magic {
        0x0000_0803 => "IDX images",
        0x0000_0801 => "IDX labels",
        _ => "IDX unsigned bytes",
    }
}

#[cfg(test)]
pub mod tests {
    use super::super::testing::{gzip, write};
    use super::*;

    /// Encodes an IDX file of unsigned bytes.
    pub fn encode_idx(shape: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, TYPE_U8, shape.len() as u8];
        for size in shape {
            bytes.extend_from_slice(&size.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    fn error_of(bytes: &[u8], dimensions: u8) -> String {
        format!("{:#}", parse_idx(bytes, dimensions, "f.idx").unwrap_err())
    }

    #[test]
    fn images_read_with_shape() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..24).collect();
        let path = write(dir.path(), "img.idx", &encode_idx(&[2, 3, 4], &data));
        let images = read_idx_images(&path).unwrap();
        assert_eq!(images.shape, vec![2, 3, 4]);
        assert_eq!(images.data, data);
        assert_eq!(images.len(), 2);
    }

    #[test]
    fn gzip_labels_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "lab.idx.gz",
            &gzip(&encode_idx(&[3], &[7, 0, 9])),
        );
        let labels = read_idx_labels(&path).unwrap();
        assert_eq!(labels.shape, vec![3]);
        assert_eq!(labels.data, vec![7, 0, 9]);
    }

    #[test]
    fn labels_file_as_images_rejected() {
        let message = error_of(&encode_idx(&[3], &[1, 2, 3]), 3);
        assert!(
            message.contains("`f.idx` byte 0: magic number 0x00000801 is not 0x00000803"),
            "{message}"
        );
        assert!(message.contains("IDX images"), "{message}");
    }

    #[test]
    fn wrong_type_byte_rejected() {
        let mut bytes = encode_idx(&[2], &[1, 2, 3, 4, 5, 6, 7, 8]);
        bytes[2] = 0x0d; // float
        let message = error_of(&bytes, 1);
        assert!(
            message.contains("magic number 0x00000d01 is not 0x00000801"),
            "{message}"
        );
    }

    #[test]
    fn non_idx_file_rejected() {
        let message = error_of(b"P5\n28 28\n255\n", 3);
        assert!(message.contains("magic number 0x50350a32"), "{message}");
    }

    #[test]
    fn short_header_rejected() {
        assert!(error_of(&[0, 0], 1).contains("2 bytes long, too short"));
        let cut = &encode_idx(&[1, 2, 2], &[0; 4])[..10];
        let message = error_of(cut, 3);
        assert!(
            message.contains("ends at byte 10 inside the IDX header, which is 16 bytes"),
            "{message}"
        );
    }

    #[test]
    fn missing_data_rejected() {
        let message = error_of(&encode_idx(&[2, 2, 2], &[0; 7]), 3);
        assert!(
            message.contains("sizes 2 x 2 x 2, so 8 bytes of data should follow byte 16, but 7 do"),
            "{message}"
        );
    }

    #[test]
    fn extra_data_rejected() {
        let message = error_of(&encode_idx(&[3], &[0; 4]), 1);
        assert!(
            message.contains("so 3 bytes of data should follow byte 8, but 4 do"),
            "{message}"
        );
    }
}
