//! Arrow values as journal bytes: each row of a column in Arrow's row format
//! (canonical — equal values give equal bytes, whatever the array's layout),
//! so a call's input is fingerprinted and its answer recorded and replayed
//! without going through the function's Rust types.
//!
//! A recorded answer carries a checksum of its rows: bytes that were not
//! written by this codec (a damaged or foreign entry) are an error, never
//! decoded.

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::compute::interleave;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};
use bytes::Bytes;
use datafusion::common::{Result, exec_datafusion_err, exec_err};

use super::{Reader, Writer};

/// Converts the values of one Arrow type to and from row bytes.
pub struct RowCodec {
    converter: RowConverter,
    data_type: DataType,
}

impl RowCodec {
    pub fn new(data_type: &DataType) -> Result<Self> {
        Ok(Self {
            converter: RowConverter::new(vec![SortField::new(data_type.clone())])?,
            data_type: data_type.clone(),
        })
    }

    /// The rows of `array`, each `rows.row(i).as_ref()` its bytes.
    pub fn rows(&self, array: &ArrayRef) -> Result<Rows> {
        Ok(self
            .converter
            .convert_columns(std::slice::from_ref(array))?)
    }

    /// Rows as one answer: their count, each row, and a checksum.
    pub fn encode<'a>(rows: impl ExactSizeIterator<Item = &'a [u8]>) -> Bytes {
        let mut w = Writer::default();
        let mut sum = blake3::Hasher::new();
        w.u32(u32::try_from(rows.len()).unwrap_or(u32::MAX));
        for row in rows {
            sum.update(&(row.len() as u64).to_le_bytes());
            sum.update(row);
            w.bytes(row);
        }
        w.bytes(&sum.finalize().as_bytes()[..16]);
        w.finish()
    }

    /// The array of the rows of `answers` in order, `(None, n)` giving `n`
    /// NULL rows; `(Some(answer), n)` must hold `n` rows.
    pub fn decode(&self, answers: &[(Option<Bytes>, usize)]) -> Result<ArrayRef> {
        let damaged =
            || exec_datafusion_err!("a journal entry holds no value of type {}", self.data_type);
        let mut rows: Vec<Bytes> = Vec::new();
        let mut at: Vec<(usize, usize)> = Vec::new();
        for (answer, expect) in answers {
            let expect = *expect;
            let Some(answer) = answer else {
                at.extend(std::iter::repeat_n((1, 0), expect));
                continue;
            };
            let mut r = Reader::new(answer.clone());
            let n = r.u32().ok_or_else(damaged)? as usize;
            if n != expect {
                return exec_err!(
                    "a journal entry holds {n} values where {expect} were expected \
                     (clear the journal: SELECT async_journal_clear())"
                );
            }
            let mut sum = blake3::Hasher::new();
            for _ in 0..n {
                let row = r.bytes().ok_or_else(damaged)?;
                sum.update(&(row.len() as u64).to_le_bytes());
                sum.update(&row);
                at.push((0, rows.len()));
                rows.push(row);
            }
            if r.bytes().as_deref() != Some(&sum.finalize().as_bytes()[..16]) {
                return Err(damaged());
            }
        }
        let parser = self.converter.parser();
        let mut decoded = self
            .converter
            .convert_rows(rows.iter().map(|r| parser.parse(r)))?;
        let values = decoded.remove(0);
        let null = new_null_array(&self.data_type, 1);
        Ok(interleave(&[values.as_ref(), null.as_ref()], &at)?)
    }
}

/// A batch's rows, for a fingerprint: its schema's fields and each row's bytes.
pub fn batch_rows(batch: &RecordBatch) -> Result<(String, Rows)> {
    let fields: Vec<SortField> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(batch.columns())?;
    Ok((format!("{:?}", batch.schema().fields()), rows))
}

/// Batches as one answer (an Arrow IPC stream).
pub fn encode_batches(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes> {
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), schema)?;
    for b in batches {
        writer.write(b)?;
    }
    writer.finish()?;
    Ok(writer.into_inner()?.into())
}

/// The batches of an answer [`encode_batches`] wrote.
pub fn decode_batches(answer: Bytes) -> Result<Vec<RecordBatch>> {
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(answer), None)?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn rows_read_back_as_they_were_and_damage_is_an_error() {
        let codec = RowCodec::new(&DataType::Utf8).unwrap();
        let array: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc")]));
        let rows = codec.rows(&array).unwrap();
        let one = |i: usize| Some(RowCodec::encode(std::iter::once(rows.row(i).as_ref())));
        let back = codec
            .decode(&[(one(2), 1), (None, 1), (one(0), 1), (one(1), 1)])
            .unwrap();
        let back = back.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            vec![Some("ccc"), None, Some("a"), None]
        );
        let mut damaged = one(2).unwrap().to_vec();
        let at = damaged.len() - 20;
        damaged[at] ^= 1;
        let err = codec.decode(&[(Some(damaged.into()), 1)]).unwrap_err();
        assert!(
            err.to_string().contains("holds no value of type Utf8"),
            "{err}"
        );
        let err = codec.decode(&[(one(0), 2)]).unwrap_err();
        assert!(err.to_string().contains("1 values where 2"), "{err}");
    }

    #[test]
    fn batches_read_back() {
        let batch =
            RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)])
                .unwrap();
        let bytes = encode_batches(&batch.schema(), &[batch.clone(), batch.slice(1, 1)]).unwrap();
        let back = decode_batches(bytes).unwrap();
        assert_eq!(back, vec![batch.clone(), batch.slice(1, 1)]);
        let (fields, rows) = batch_rows(&batch).unwrap();
        assert!(fields.contains("\"x\""));
        assert_ne!(rows.row(0).as_ref(), rows.row(1).as_ref());
    }
}
