//! Zip archives of uint8 `.npy` arrays, as written by NumPy's `savez`, such as
//! Keras' `mnist.npz` (members `x_train`, `y_train`, `x_test`, `y_test`).
//!
//! A `.npy` file (NumPy format versions 1.0 to 3.0) starts with the magic
//! `\x93NUMPY`, a major and a minor version byte, and the header length. The
//! length is a little-endian u16 in version 1 and a u32 in versions 2 and 3. The
//! header is a Python dict literal padded with spaces and a newline, such as
//! `{'descr': '|u1', 'fortran_order': False, 'shape': (3, 28, 28), }`. The data
//! follows in the order the header gives. Only uint8 arrays in C order are
//! accepted.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::{file_name, U8Array};

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Reads the arrays `members` from the `.npz` archive at `path`, in that
/// order. A member may be named with or without its `.npy` extension.
pub fn read_npz(path: &Path, members: &[&str]) -> Result<Vec<U8Array>> {
    let name = file_name(path);
    let file = std::fs::File::open(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .with_context(|| format!("`{name}` is not a valid zip archive"))?;
    let mut arrays = Vec::with_capacity(members.len());
    for member in members {
        let member = if member.ends_with(".npy") {
            member.to_string()
        } else {
            format!("{member}.npy")
        };
        let bytes = read_member(&mut archive, &member, &name)?;
        let array = parse_npy(&bytes)
            .map_err(|message| anyhow!("`{name}` member `{member}`: {message}"))?;
        arrays.push(array);
    }
    Ok(arrays)
}

fn read_member<R: std::io::Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    member: &str,
    name: &str,
) -> Result<Vec<u8>> {
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let mut file = match archive.by_name(member) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => {
            let mut names = names;
            names.sort();
            bail!(
                "`{name}` has no member `{member}`; its members are {}",
                names.join(", ")
            );
        }
        Err(err) => {
            return Err(err).with_context(|| format!("failed to open `{member}` in `{name}`"))
        }
    };
    let mut bytes = Vec::with_capacity(file.size() as usize);
    file.read_to_end(&mut bytes)
        .with_context(|| format!("failed to decompress `{member}` in `{name}`"))?;
    Ok(bytes)
}

/// Parses a `.npy` file of uint8 values. Errors give the byte offset.
pub fn parse_npy(bytes: &[u8]) -> Result<U8Array, String> {
    if !bytes.starts_with(NPY_MAGIC) {
        let start = &bytes[..bytes.len().min(6)];
        return Err(format!(
            "byte 0: {start:?} is not the .npy magic \\x93NUMPY"
        ));
    }
    let (header_start, header_len) = match (bytes.get(6), bytes.get(7)) {
        (Some(1), Some(_)) => (
            10,
            bytes
                .get(8..10)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize),
        ),
        (Some(2 | 3), Some(_)) => (
            12,
            bytes
                .get(8..12)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
        ),
        (Some(major), Some(minor)) => {
            return Err(format!(
                "byte 6: .npy version {major}.{minor} is not supported (1.0 to 3.0 are)"
            ))
        }
        _ => (0, None),
    };
    let Some(header_len) = header_len else {
        return Err(format!(
            "the file ends at byte {} inside the .npy preamble",
            bytes.len()
        ));
    };
    let header_end = header_start + header_len;
    if header_end > bytes.len() {
        return Err(format!(
            "the file ends at byte {} inside the .npy header",
            bytes.len()
        ));
    }
    let header = std::str::from_utf8(&bytes[header_start..header_end]).map_err(|err| {
        format!(
            "byte {}: the .npy header is not UTF-8",
            header_start + err.valid_up_to()
        )
    })?;
    let shape = check_header(header).map_err(|(offset, message)| {
        format!(
            "byte {}: invalid .npy header `{}`: {message}",
            header_start + offset,
            header.trim_end()
        )
    })?;
    let data = &bytes[header_end..];
    let expected = shape
        .iter()
        .try_fold(1usize, |len, &size| len.checked_mul(size));
    if expected != Some(data.len()) {
        return Err(format!(
            "the header gives shape {shape:?}, so {} bytes of data should follow byte \
             {header_end}, but {} do",
            expected.map_or_else(|| "more than usize::MAX".to_string(), |len| len.to_string()),
            data.len()
        ));
    }
    Ok(U8Array {
        shape,
        data: data.to_vec(),
    })
}

/// Checks the header dict and returns the shape. Errors are (offset in the
/// header, message).
fn check_header(header: &str) -> Result<Vec<usize>, (usize, String)> {
    let dict = HeaderParser {
        text: header.as_bytes(),
        position: 0,
    }
    .parse_dict()?;
    let field = |key: &str| {
        dict.get(key)
            .ok_or_else(|| (0, format!("the key `{key}` is missing")))
    };
    match field("descr")? {
        PyValue::Str(descr) if matches!(descr.as_str(), "|u1" | "<u1" | ">u1" | "u1") => {}
        other => return Err((0, format!("dtype {other} is not uint8 (`|u1`)"))),
    }
    match field("fortran_order")? {
        PyValue::Bool(false) => {}
        PyValue::Bool(true) => return Err((0, "Fortran order is not supported".to_string())),
        other => return Err((0, format!("fortran_order {other} is not a bool"))),
    }
    match field("shape")? {
        PyValue::Tuple(shape) => Ok(shape.clone()),
        other => Err((0, format!("shape {other} is not a tuple"))),
    }
}

/// A value in a `.npy` header dict.
#[derive(Debug, Clone, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

impl std::fmt::Display for PyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PyValue::Str(text) => write!(f, "'{text}'"),
            PyValue::Bool(true) => write!(f, "True"),
            PyValue::Bool(false) => write!(f, "False"),
            PyValue::Tuple(items) => write!(f, "{items:?}"),
        }
    }
}

/// A parser for the Python dict literal of a `.npy` header: string keys, and
/// values that are strings, `True`, `False` or tuples of ints.
struct HeaderParser<'a> {
    text: &'a [u8],
    position: usize,
}

type ParseResult<T> = Result<T, (usize, String)>;

impl HeaderParser<'_> {
    fn parse_dict(&mut self) -> ParseResult<BTreeMap<String, PyValue>> {
        let mut dict = BTreeMap::new();
        self.expect(b'{')?;
        loop {
            if self.eat(b'}') {
                return Ok(dict);
            }
            let key = self.parse_string()?;
            self.expect(b':')?;
            let value = self.parse_value()?;
            dict.insert(key, value);
            if !self.eat(b',') {
                self.expect(b'}')?;
                return Ok(dict);
            }
        }
    }

    fn parse_value(&mut self) -> ParseResult<PyValue> {
        self.skip_space();
        match self.text.get(self.position) {
            Some(b'\'' | b'"') => Ok(PyValue::Str(self.parse_string()?)),
            Some(b'(') => Ok(PyValue::Tuple(self.parse_tuple()?)),
            _ if self.eat_word("True") => Ok(PyValue::Bool(true)),
            _ if self.eat_word("False") => Ok(PyValue::Bool(false)),
            _ => Err(self.error("expected a string, `True`, `False` or a tuple")),
        }
    }

    fn parse_string(&mut self) -> ParseResult<String> {
        self.skip_space();
        let quote = match self.text.get(self.position) {
            Some(&quote @ (b'\'' | b'"')) => quote,
            _ => return Err(self.error("expected a quoted string")),
        };
        let start = self.position + 1;
        let Some(length) = self.text[start..].iter().position(|&b| b == quote) else {
            return Err(self.error("the string is not closed"));
        };
        self.position = start + length + 1;
        Ok(String::from_utf8_lossy(&self.text[start..start + length]).into_owned())
    }

    fn parse_tuple(&mut self) -> ParseResult<Vec<usize>> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        loop {
            if self.eat(b')') {
                return Ok(items);
            }
            items.push(self.parse_int()?);
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(items);
            }
        }
    }

    /// Parses a non-negative int, with the `L` suffix of Python 2 allowed.
    fn parse_int(&mut self) -> ParseResult<usize> {
        self.skip_space();
        let start = self.position;
        while self.text.get(self.position).is_some_and(u8::is_ascii_digit) {
            self.position += 1;
        }
        let digits = std::str::from_utf8(&self.text[start..self.position]).unwrap_or("");
        let value = digits
            .parse()
            .map_err(|_| (start, "expected a non-negative int".to_string()))?;
        self.eat(b'L');
        Ok(value)
    }

    fn skip_space(&mut self) {
        while self
            .text
            .get(self.position)
            .is_some_and(u8::is_ascii_whitespace)
        {
            self.position += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.text.get(self.position) == Some(&byte);
        self.position += usize::from(found);
        found
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.text[self.position..].starts_with(word.as_bytes());
        if found {
            self.position += word.len();
        }
        found
    }

    fn expect(&mut self, byte: u8) -> ParseResult<()> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", byte as char)))
        }
    }

    fn error(&self, message: &str) -> (usize, String) {
        (
            self.position,
            format!("{message} at header offset {}", self.position),
        )
    }
}

#[cfg(test)]
pub mod tests {
    use std::io::{Cursor, Write};

    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;

    use super::super::testing::write;
    use super::*;

    /// Encodes a `.npy` file with the given header dict and format version.
    pub fn encode_npy_with(header: &str, major: u8, data: &[u8]) -> Vec<u8> {
        let prefix = if major == 1 { 10 } else { 12 };
        let mut header = header.to_string();
        // NumPy pads the header with spaces so that the data starts on a
        // multiple of 64 bytes, and ends it with a newline.
        while (prefix + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = NPY_MAGIC.to_vec();
        bytes.extend_from_slice(&[major, 0]);
        if major == 1 {
            bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    /// Encodes a uint8 `.npy` file in C order, as NumPy 1.x writes it.
    pub fn encode_npy(shape: &[usize], data: &[u8]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        let shape = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        let header = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': {shape}, }}");
        encode_npy_with(&header, 1, data)
    }

    /// Encodes a zip archive of the named members.
    pub fn encode_zip(members: &[(&str, Vec<u8>)], method: CompressionMethod) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in members {
            let options = SimpleFileOptions::default().compression_method(method);
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn npy_error(bytes: &[u8]) -> String {
        parse_npy(bytes).unwrap_err()
    }

    #[test]
    fn members_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<u8> = (0..12).collect();
        let zip = encode_zip(
            &[
                ("y.npy", encode_npy(&[3], &[4, 5, 6])),
                ("x.npy", encode_npy(&[3, 2, 2], &images)),
            ],
            CompressionMethod::Stored,
        );
        let path = write(dir.path(), "d.npz", &zip);
        let arrays = read_npz(&path, &["x", "y.npy"]).unwrap();
        assert_eq!(arrays[0].shape, vec![3, 2, 2]);
        assert_eq!(arrays[0].data, images);
        assert_eq!(
            arrays[1],
            U8Array {
                shape: vec![3],
                data: vec![4, 5, 6]
            }
        );
    }

    #[test]
    fn deflated_members_read() {
        let dir = tempfile::tempdir().unwrap();
        let zip = encode_zip(
            &[("a.npy", encode_npy(&[4], &[1, 2, 3, 4]))],
            CompressionMethod::Deflated,
        );
        let path = write(dir.path(), "d.npz", &zip);
        assert_eq!(read_npz(&path, &["a"]).unwrap()[0].data, vec![1, 2, 3, 4]);
    }

    #[test]
    fn version_2_and_python2_ints_read() {
        let header = "{\"descr\": \"<u1\", \"fortran_order\": False, \"shape\": (2L, 1L)}";
        let array = parse_npy(&encode_npy_with(header, 2, &[8, 9])).unwrap();
        assert_eq!(array.shape, vec![2, 1]);
        assert_eq!(array.data, vec![8, 9]);
    }

    #[test]
    fn missing_member_named() {
        let dir = tempfile::tempdir().unwrap();
        let zip = encode_zip(
            &[("x_train.npy", encode_npy(&[1], &[0]))],
            CompressionMethod::Stored,
        );
        let path = write(dir.path(), "mnist.npz", &zip);
        let message = format!("{:#}", read_npz(&path, &["x_train", "x_test"]).unwrap_err());
        assert!(
            message.contains("`mnist.npz` has no member `x_test.npy`; its members are x_train.npy"),
            "{message}"
        );
    }

    #[test]
    fn non_zip_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bad.npz", b"not a zip at all");
        let message = format!("{:#}", read_npz(&path, &["x"]).unwrap_err());
        assert!(
            message.contains("`bad.npz` is not a valid zip archive"),
            "{message}"
        );
    }

    #[test]
    fn member_error_names_archive_and_member() {
        let dir = tempfile::tempdir().unwrap();
        let zip = encode_zip(&[("x.npy", b"garbage".to_vec())], CompressionMethod::Stored);
        let path = write(dir.path(), "d.npz", &zip);
        let message = format!("{:#}", read_npz(&path, &["x"]).unwrap_err());
        assert!(
            message.contains("`d.npz` member `x.npy`: byte 0:"),
            "{message}"
        );
    }

    #[test]
    fn bad_magic_rejected() {
        assert!(npy_error(b"\x93NUMPz\x01\x00").contains("byte 0"));
    }

    #[test]
    fn unsupported_version_rejected() {
        let mut bytes = encode_npy(&[1], &[0]);
        bytes[6] = 4;
        assert!(npy_error(&bytes).contains("byte 6: .npy version 4.0 is not supported"));
    }

    #[test]
    fn truncated_header_rejected() {
        let bytes = encode_npy(&[1], &[0]);
        assert!(npy_error(&bytes[..8]).contains("ends at byte 8 inside the .npy preamble"));
        assert!(npy_error(&bytes[..30]).contains("ends at byte 30 inside the .npy header"));
    }

    #[test]
    fn wrong_dtype_rejected() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
        let message = npy_error(&encode_npy_with(header, 1, &[0; 4]));
        assert!(
            message.contains("invalid .npy header") && message.contains("'<f4' is not uint8"),
            "{message}"
        );
    }

    #[test]
    fn fortran_order_rejected() {
        let header = "{'descr': '|u1', 'fortran_order': True, 'shape': (1, 1), }";
        assert!(
            npy_error(&encode_npy_with(header, 1, &[0])).contains("Fortran order is not supported")
        );
    }

    #[test]
    fn missing_key_rejected() {
        let header = "{'descr': '|u1', 'shape': (1,), }";
        assert!(npy_error(&encode_npy_with(header, 1, &[0]))
            .contains("the key `fortran_order` is missing"));
    }

    #[test]
    fn malformed_dict_located() {
        let header = "{'descr' '|u1', 'fortran_order': False, 'shape': (1,), }";
        let message = npy_error(&encode_npy_with(header, 1, &[0]));
        assert!(
            message.contains("byte 19: invalid .npy header"),
            "{message}"
        );
        assert!(
            message.contains("expected `:` at header offset 9"),
            "{message}"
        );
        let header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, -2), }";
        let message = npy_error(&encode_npy_with(header, 1, &[0]));
        assert!(message.contains("expected a non-negative int"), "{message}");
    }

    #[test]
    fn data_length_checked() {
        // The 71-byte preamble and header are padded to 128 bytes.
        let message = npy_error(&encode_npy(&[2, 3], &[0; 5]));
        assert!(
            message.contains("shape [2, 3], so 6 bytes of data should follow byte 128, but 5 do"),
            "{message}"
        );
    }
}
