//! Records as rows of a table: a serde `Serializer` that flattens one record into cells. Records
//! are `Serialize` already (they cross the network that way), so any record can be shown without
//! asking more of its type.
//!
//! * A tuple (or tuple struct) gives one column per element, `_1`, `_2`, ... as Spark names them.
//! * A struct with named fields gives one column per field, named as the field.
//! * Anything else is one column, `value`.
//!
//! `Some(x)` in a column shows as `x` and `None` as `null`, as Spark shows them. Values inside a
//! cell (a tuple in a tuple, a vector, a map) are written as Rust's `Debug` writes them.

use serde::Serialize;
use serde::ser;
use std::cmp::Ordering;
use std::fmt;

/// One value in a table, kept typed so that rows can be sorted by it and numbers aligned.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell {
    /// `None` or `()`.
    Null,
    /// A `bool`.
    Bool(bool),
    /// Any integer up to 128 bits.
    Int(i128),
    /// `f32` or `f64`.
    Float(f64),
    /// A string or a `char`.
    Text(String),
    /// A value with parts (a vector, a tuple, a struct, a map, an enum), written out.
    Compound(String),
}

impl Cell {
    /// The cell as a table shows it: strings without quotes, `None` as `null`.
    pub fn text(&self) -> String {
        match self {
            Cell::Null => "null".to_string(),
            Cell::Text(s) | Cell::Compound(s) => s.clone(),
            other => other.nested(),
        }
    }

    /// The cell as a part of a larger value: as `Debug` writes it.
    fn nested(&self) -> String {
        match self {
            Cell::Null => "None".to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(x) => format!("{x:?}"),
            Cell::Text(s) => format!("{s:?}"),
            Cell::Compound(s) => s.clone(),
        }
    }

    /// A total order for sorting rows: nulls first, then booleans, numbers (by value, integers
    /// and floats together), strings, and written-out values.
    pub fn order(&self, other: &Cell) -> Ordering {
        fn rank(cell: &Cell) -> u8 {
            match cell {
                Cell::Null => 0,
                Cell::Bool(_) => 1,
                Cell::Int(_) | Cell::Float(_) => 2,
                Cell::Text(_) => 3,
                Cell::Compound(_) => 4,
            }
        }
        match (self, other) {
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            (Cell::Int(a), Cell::Float(b)) => (*a as f64).total_cmp(b),
            (Cell::Float(a), Cell::Int(b)) => a.total_cmp(&(*b as f64)),
            (Cell::Float(a), Cell::Float(b)) => a.total_cmp(b),
            (Cell::Text(a), Cell::Text(b)) | (Cell::Compound(a), Cell::Compound(b)) => a.cmp(b),
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }
}

/// One record flattened: its own column names, if it has them, and a cell per column.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    /// A tuple's `_1`, `_2`, ... or a struct's field names; `None` for a record shown as one
    /// `value`.
    pub columns: Option<Vec<String>>,
    /// One cell per column.
    pub cells: Vec<Cell>,
}

/// `record` as a row of a table. A record whose `Serialize` fails shows the reason in its one
/// cell: displaying must not fail a cell that computed its result.
pub(crate) fn flatten<T: Serialize + ?Sized>(record: &T) -> Row {
    record.serialize(RowSerializer).unwrap_or_else(|e| Row {
        columns: None,
        cells: vec![Cell::Text(format!("(cannot show this record: {e})"))],
    })
}

/// `value` as the one cell of a column.
pub(crate) fn cell<T: Serialize + ?Sized>(value: &T) -> Cell {
    value
        .serialize(CellSerializer { nested: false })
        .unwrap_or_else(|e| Cell::Text(format!("(cannot show this value: {e})")))
}

/// Why a value could not be written out: only a `Serialize` implementation of its own can fail.
#[derive(Debug)]
pub(crate) struct Unshowable(String);

impl fmt::Display for Unshowable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unshowable {}

impl ser::Error for Unshowable {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Unshowable(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, Unshowable>;

/// Writes one value as a [`Cell`]; `nested` when it is a part of a larger value.
#[derive(Clone, Copy)]
struct CellSerializer {
    nested: bool,
}

/// The parts of a value written as a sequence: `[a, b]`, `(a, b)`, `Name(a, b)`.
struct SeqCell {
    open: String,
    close: &'static str,
    items: Vec<String>,
}

impl SeqCell {
    fn new(open: impl Into<String>, close: &'static str) -> SeqCell {
        SeqCell {
            open: open.into(),
            close,
            items: Vec::new(),
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.items
            .push(value.serialize(CellSerializer { nested: true })?.nested());
        Ok(())
    }

    fn finish(self) -> Cell {
        // A one-element tuple keeps its comma, as `Debug` writes it.
        let comma = if self.open == "(" && self.items.len() == 1 {
            ","
        } else {
            ""
        };
        Cell::Compound(format!(
            "{}{}{comma}{}",
            self.open,
            self.items.join(", "),
            self.close
        ))
    }
}

/// The parts of a value written as fields or entries: `{k: v}`, `Name { x: 1 }`.
struct MapCell {
    name: Option<&'static str>,
    entries: Vec<String>,
    key: Option<String>,
}

impl MapCell {
    fn new(name: Option<&'static str>) -> MapCell {
        MapCell {
            name,
            entries: Vec::new(),
            key: None,
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<()> {
        let value = value.serialize(CellSerializer { nested: true })?.nested();
        self.entries.push(format!("{name}: {value}"));
        Ok(())
    }

    fn finish(self) -> Cell {
        Cell::Compound(match self.name {
            Some(name) if self.entries.is_empty() => name.to_string(),
            Some(name) => format!("{name} {{ {} }}", self.entries.join(", ")),
            None => format!("{{{}}}", self.entries.join(", ")),
        })
    }
}

/// The four serde traits of sequence-like values: each element is one entry of the cell.
macro_rules! seq_cell {
    ($($trait:ident $method:ident),*) => {$(
        impl ser::$trait for SeqCell {
            type Ok = Cell;
            type Error = Unshowable;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.push(value)
            }
            fn end(self) -> Result<Cell> {
                Ok(self.finish())
            }
        }
    )*};
}
seq_cell!(
    SerializeSeq serialize_element,
    SerializeTuple serialize_element,
    SerializeTupleStruct serialize_field,
    SerializeTupleVariant serialize_field
);

impl ser::SerializeMap for MapCell {
    type Ok = Cell;
    type Error = Unshowable;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(CellSerializer { nested: true })?.nested());
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self.key.take().unwrap_or_default();
        self.field(&key, value)
    }
    fn end(self) -> Result<Cell> {
        Ok(self.finish())
    }
}

/// The struct-like serde traits of [`MapCell`]: a struct's and a struct variant's fields are
/// named columns alike.
macro_rules! struct_cell {
    ($($trait:ident),*) => {$(
        impl ser::$trait for MapCell {
            type Ok = Cell;
            type Error = Unshowable;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<()> {
                self.field(key, value)
            }
            fn end(self) -> Result<Cell> {
                Ok(self.finish())
            }
        }
    )*};
}

struct_cell!(SerializeStruct, SerializeStructVariant);

impl ser::Serializer for CellSerializer {
    type Ok = Cell;
    type Error = Unshowable;
    type SerializeSeq = SeqCell;
    type SerializeTuple = SeqCell;
    type SerializeTupleStruct = SeqCell;
    type SerializeTupleVariant = SeqCell;
    type SerializeMap = MapCell;
    type SerializeStruct = MapCell;
    type SerializeStructVariant = MapCell;

    fn serialize_bool(self, v: bool) -> Result<Cell> {
        Ok(Cell::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Cell> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Cell> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Cell> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Cell> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_i128(self, v: i128) -> Result<Cell> {
        Ok(Cell::Int(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Cell> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Cell> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Cell> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Cell> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_u128(self, v: u128) -> Result<Cell> {
        Ok(i128::try_from(v).map_or_else(|_| Cell::Compound(v.to_string()), Cell::Int))
    }
    fn serialize_f32(self, v: f32) -> Result<Cell> {
        // Through its decimal text, so that 0.1f32 shows as 0.1, not 0.10000000149011612.
        Ok(Cell::Float(v.to_string().parse().unwrap_or(v as f64)))
    }
    fn serialize_f64(self, v: f64) -> Result<Cell> {
        Ok(Cell::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Cell> {
        Ok(Cell::Text(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Cell> {
        Ok(Cell::Text(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Cell> {
        Ok(Cell::Compound(format!("{v:?}")))
    }
    fn serialize_none(self) -> Result<Cell> {
        Ok(Cell::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Cell> {
        let inner = value.serialize(self)?;
        Ok(if self.nested {
            Cell::Compound(format!("Some({})", inner.nested()))
        } else {
            inner
        })
    }
    fn serialize_unit(self) -> Result<Cell> {
        Ok(if self.nested {
            Cell::Compound("()".into())
        } else {
            Cell::Null
        })
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Cell> {
        Ok(Cell::Compound(name.into()))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Cell> {
        Ok(Cell::Compound(variant.into()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Cell> {
        let mut seq = SeqCell::new(format!("{name}("), ")");
        seq.push(value)?;
        Ok(seq.finish())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Cell> {
        let mut seq = SeqCell::new(format!("{variant}("), ")");
        seq.push(value)?;
        Ok(seq.finish())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<SeqCell> {
        Ok(SeqCell::new("[", "]"))
    }
    fn serialize_tuple(self, _: usize) -> Result<SeqCell> {
        Ok(SeqCell::new("(", ")"))
    }
    fn serialize_tuple_struct(self, name: &'static str, _: usize) -> Result<SeqCell> {
        Ok(SeqCell::new(format!("{name}("), ")"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<SeqCell> {
        Ok(SeqCell::new(format!("{variant}("), ")"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapCell> {
        Ok(MapCell::new(None))
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<MapCell> {
        Ok(MapCell::new(Some(name)))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<MapCell> {
        Ok(MapCell::new(Some(variant)))
    }
}

/// Writes a record as a [`Row`]: tuples and structs spread over columns, anything else is one
/// cell.
struct RowSerializer;

/// The columns of a tuple or struct record, filled in one at a time.
struct RowColumns {
    /// Tuples name their columns by position.
    positional: bool,
    columns: Vec<String>,
    cells: Vec<Cell>,
}

impl RowColumns {
    fn new(positional: bool) -> RowColumns {
        RowColumns {
            positional,
            columns: Vec::new(),
            cells: Vec::new(),
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, name: Option<&str>, value: &T) -> Result<()> {
        let name = match name {
            Some(name) if !self.positional => name.to_string(),
            _ => format!("_{}", self.cells.len() + 1),
        };
        self.columns.push(name);
        self.cells
            .push(value.serialize(CellSerializer { nested: false })?);
        Ok(())
    }

    fn finish(self) -> Row {
        Row {
            columns: Some(self.columns),
            cells: self.cells,
        }
    }
}

impl ser::SerializeTuple for RowColumns {
    type Ok = Row;
    type Error = Unshowable;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(None, value)
    }
    fn end(self) -> Result<Row> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for RowColumns {
    type Ok = Row;
    type Error = Unshowable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(None, value)
    }
    fn end(self) -> Result<Row> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for RowColumns {
    type Ok = Row;
    type Error = Unshowable;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.push(Some(key), value)
    }
    fn end(self) -> Result<Row> {
        Ok(self.finish())
    }
}

/// A record that is one value: its compound parts are written into that one cell.
struct OneCell<S>(S);

impl<S: ser::SerializeSeq<Ok = Cell, Error = Unshowable>> ser::SerializeSeq for OneCell<S> {
    type Ok = Row;
    type Error = Unshowable;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.0.serialize_element(value)
    }
    fn end(self) -> Result<Row> {
        self.0.end().map(one_value)
    }
}

impl<S: ser::SerializeTupleVariant<Ok = Cell, Error = Unshowable>> ser::SerializeTupleVariant
    for OneCell<S>
{
    type Ok = Row;
    type Error = Unshowable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.0.serialize_field(value)
    }
    fn end(self) -> Result<Row> {
        self.0.end().map(one_value)
    }
}

impl<S: ser::SerializeMap<Ok = Cell, Error = Unshowable>> ser::SerializeMap for OneCell<S> {
    type Ok = Row;
    type Error = Unshowable;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.0.serialize_key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.0.serialize_value(value)
    }
    fn end(self) -> Result<Row> {
        self.0.end().map(one_value)
    }
}

impl<S: ser::SerializeStructVariant<Ok = Cell, Error = Unshowable>> ser::SerializeStructVariant
    for OneCell<S>
{
    type Ok = Row;
    type Error = Unshowable;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.0.serialize_field(key, value)
    }
    fn end(self) -> Result<Row> {
        self.0.end().map(one_value)
    }
}

fn one_value(cell: Cell) -> Row {
    Row {
        columns: None,
        cells: vec![cell],
    }
}

/// The serializer for the one cell of a record shown as a `value`.
const SCALAR: CellSerializer = CellSerializer { nested: false };

macro_rules! one_cell {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<Row> {
            ser::Serializer::$method(SCALAR, $($arg),*).map(one_value)
        })*
    };
}

impl ser::Serializer for RowSerializer {
    type Ok = Row;
    type Error = Unshowable;
    type SerializeSeq = OneCell<SeqCell>;
    type SerializeTuple = RowColumns;
    type SerializeTupleStruct = RowColumns;
    type SerializeTupleVariant = OneCell<SeqCell>;
    type SerializeMap = OneCell<MapCell>;
    type SerializeStruct = RowColumns;
    type SerializeStructVariant = OneCell<MapCell>;

    one_cell! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Row> {
        // `Some(record)` shows as the record.
        value.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Row> {
        ser::Serializer::serialize_newtype_struct(SCALAR, name, value).map(one_value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Row> {
        ser::Serializer::serialize_newtype_variant(SCALAR, name, index, variant, value)
            .map(one_value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<OneCell<SeqCell>> {
        ser::Serializer::serialize_seq(SCALAR, len).map(OneCell)
    }
    fn serialize_tuple(self, _: usize) -> Result<RowColumns> {
        Ok(RowColumns::new(true))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<RowColumns> {
        Ok(RowColumns::new(true))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<OneCell<SeqCell>> {
        ser::Serializer::serialize_tuple_variant(SCALAR, name, index, variant, len).map(OneCell)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<OneCell<MapCell>> {
        ser::Serializer::serialize_map(SCALAR, len).map(OneCell)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<RowColumns> {
        Ok(RowColumns::new(false))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<OneCell<MapCell>> {
        ser::Serializer::serialize_struct_variant(SCALAR, name, index, variant, len).map(OneCell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    fn texts(row: &Row) -> Vec<String> {
        row.cells.iter().map(Cell::text).collect()
    }

    fn columns(row: &Row) -> Vec<&str> {
        row.columns
            .as_ref()
            .map(|c| c.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_tuple_gives_a_column_per_element_named_by_position() {
        let row = flatten(&("apple".to_string(), 3u64, 2.5f64));
        assert_eq!(columns(&row), ["_1", "_2", "_3"]);
        assert_eq!(texts(&row), ["apple", "3", "2.5"]);
        assert_eq!(row.cells[1], Cell::Int(3));
    }

    #[test]
    fn a_struct_gives_its_field_names() {
        #[derive(Serialize)]
        struct Visit {
            page: String,
            hits: u32,
            last: Option<f32>,
        }
        let row = flatten(&Visit {
            page: "/index".into(),
            hits: 7,
            last: None,
        });
        assert_eq!(columns(&row), ["page", "hits", "last"]);
        assert_eq!(texts(&row), ["/index", "7", "null"]);
        let row = flatten(&Visit {
            page: "/a".into(),
            hits: 1,
            last: Some(0.1),
        });
        assert_eq!(texts(&row), ["/a", "1", "0.1"]);
    }

    #[test]
    fn anything_else_is_one_value() {
        for (row, text) in [
            (flatten(&42u8), "42"),
            (flatten("a line of text"), "a line of text"),
            (flatten(&vec![1, 2, 3]), "[1, 2, 3]"),
            (flatten(&1.0f64), "1.0"),
            (flatten(&'x'), "x"),
            (flatten(&None::<u32>), "null"),
            (flatten(&Some(5u32)), "5"),
        ] {
            assert_eq!(row.columns, None, "{text}");
            assert_eq!(texts(&row), [text]);
        }
    }

    #[test]
    fn values_inside_a_cell_are_written_as_debug_writes_them() {
        #[derive(Serialize)]
        struct Point {
            x: f64,
            y: f64,
        }
        #[derive(Serialize)]
        enum Shape {
            Dot,
            Circle { r: f64 },
            Tagged(String),
        }
        let mut map = BTreeMap::new();
        map.insert("b".to_string(), 2u8);
        map.insert("a".to_string(), 1u8);
        let row = flatten(&(
            7u64,
            ("x".to_string(), Some(1u8), None::<u8>, (1u8,)),
            Point { x: 1.0, y: -2.5 },
            vec![
                Shape::Dot,
                Shape::Circle { r: 0.5 },
                Shape::Tagged("t".into()),
            ],
            map,
        ));
        assert_eq!(
            texts(&row),
            [
                "7",
                "(\"x\", Some(1), None, (1,))",
                "Point { x: 1.0, y: -2.5 }",
                "[Dot, Circle { r: 0.5 }, Tagged(\"t\")]",
                "{\"a\": 1, \"b\": 2}",
            ]
        );
    }

    #[test]
    fn cells_sort_numbers_by_value_and_text_by_its_letters() {
        let mut cells = [
            cell(&10u32),
            cell("b"),
            cell(&9.5f64),
            cell(&None::<u8>),
            cell("a"),
            cell(&-3i64),
        ];
        cells.sort_by(Cell::order);
        let texts: Vec<String> = cells.iter().map(Cell::text).collect();
        assert_eq!(texts, ["null", "-3", "9.5", "10", "a", "b"]);
    }
}
