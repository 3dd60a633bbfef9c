//! The header row: which column holds which field, whatever the order and the wording.
//!
//! The machinery is shared by every Chinese spreadsheet the service reads (rosters, the
//! medical-insurance bureau's settlement files): a file kind names its fields, their standard
//! headers and their synonyms as a [`FieldSet`]; recognising and locating them is done here once.

use std::marker::PhantomData;

/// The fields one kind of file holds: each with a standard header and the synonyms accepted.
pub(crate) trait FieldSet: Copy + Eq + 'static {
    /// Every field; [`FieldSet::index`] is the position in this list.
    fn all() -> &'static [Self];
    /// The standard header, used in templates and when a column is absent.
    fn canonical(self) -> &'static str;
    /// Headers accepted for the field, compared after [`normalise_header`].
    fn aliases(self) -> &'static [&'static str];
    /// The fields whose headers, all present in one row, make it the header row.
    fn header_keys() -> &'static [Self];

    /// The field's position in [`FieldSet::all`].
    fn index(self) -> usize {
        Self::all().iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// A field of the roster the reader understands. Any other column with a header is kept as an
/// extra column (see [`Columns::extras`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// 姓名
    Name,
    /// 身份证号码
    IdNumber,
    /// 手机号码
    Phone,
    /// 工作单位
    Employer,
    /// 是否参加医保
    Insured,
    /// 在职/退休
    Status,
    /// 备注
    Note,
    /// 性别 (checked against the ID number)
    Sex,
    /// 部门
    Department,
    /// 工号
    EmployeeNumber,
}

/// Every roster field, in the order of the standard template.
const ROSTER_FIELDS: [Field; FIELDS] = [
    Field::Name,
    Field::IdNumber,
    Field::Phone,
    Field::Employer,
    Field::Insured,
    Field::Status,
    Field::Note,
    Field::Sex,
    Field::Department,
    Field::EmployeeNumber,
];

impl FieldSet for Field {
    fn all() -> &'static [Field] {
        &ROSTER_FIELDS
    }

    fn header_keys() -> &'static [Field] {
        &[Field::Name, Field::IdNumber]
    }

    /// The standard header, used in the template and when a column is absent.
    fn canonical(self) -> &'static str {
        match self {
            Field::Name => "姓名",
            Field::IdNumber => "身份证号码",
            Field::Phone => "手机号码",
            Field::Employer => "工作单位",
            Field::Insured => "是否参加医保",
            Field::Status => "在职/退休",
            Field::Note => "备注",
            Field::Sex => "性别",
            Field::Department => "部门",
            Field::EmployeeNumber => "工号",
        }
    }

    /// Headers accepted for the field, compared after [`normalise_header`].
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Name => &["姓名", "职工姓名", "参互人姓名", "参保人姓名"],
            Field::IdNumber => &[
                "身份证号码",
                "身份证号",
                "公民身份号码",
                "证件号码",
                "身份证",
                "居民身份证号码",
            ],
            Field::Phone => &["手机号码", "手机号", "联系电话", "手机", "电话", "联系方式"],
            Field::Employer => &[
                "工作单位",
                "单位",
                "所在单位",
                "单位名称",
                "工作单位名称",
                "所在工作单位",
            ],
            Field::Insured => &[
                "是否参加医保",
                "是否参保",
                "是否参加职工医保",
                "参加医保",
                "是否参加基本医保",
                "是否参加基本医疗保险",
                "是否参加职工基本医疗保险",
            ],
            Field::Status => &[
                "在职/退休",
                "人员类别",
                "在职或退休",
                "人员状态",
                "在职退休",
                "在职/离退休",
            ],
            Field::Note => &["备注", "备注说明"],
            Field::Sex => &["性别"],
            Field::Department => &[
                "部门",
                "所在部门",
                "科室",
                "所在科室",
                "部门/科室",
                "车间",
                "所在车间",
            ],
            Field::EmployeeNumber => &[
                "工号",
                "职工编号",
                "员工编号",
                "职工号",
                "员工号",
                "员工工号",
                "职工工号",
                "人员编号",
            ],
        }
    }
}

/// How many fields there are.
const FIELDS: usize = 10;

/// Headers that name no field and are not kept either: the row number, and the 问题 column of
/// a problem workbook uploaded again.
const NOT_KEPT: [&str; 2] = ["序号", super::PROBLEM_COLUMN];

/// Most extra columns kept per roster; further ones are reported as warnings and not kept.
pub(super) const MAX_EXTRA_COLUMNS: usize = 30;

/// Reduces a header cell to a comparable form: no whitespace of any kind (spaces, non-breaking
/// spaces, line breaks inside the cell), no `*` marking a required column, full-width
/// punctuation folded to ASCII, and any parenthesised remark removed (`手机号码（选填）`).
pub(crate) fn normalise_header(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut depth = 0u32;
    for c in raw.chars() {
        let c = match c {
            '（' => '(',
            '）' => ')',
            '／' => '/',
            '＊' => '*',
            other => other,
        };
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            '*' | '※' => {}
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// The field a header cell names, if any.
pub(crate) fn field_of<F: FieldSet>(raw: &str) -> Option<F> {
    let header = normalise_header(raw);
    if header.is_empty() {
        return None;
    }
    F::all()
        .iter()
        .copied()
        .find(|f| f.aliases().iter().any(|a| *a == header))
}

/// Where each field is: its zero-based column and its header as written in the file; and the
/// other columns, kept as the clerk named them (rosters keep them; other files ignore them).
#[derive(Debug, Clone)]
pub(crate) struct Columns<F: FieldSet = Field> {
    found: Vec<Option<(u32, String)>>,
    /// `(column, header)` of every other column with a header, in file order, headers made
    /// unique (a repeated header gets ` (2)`, ` (3)` …); at most [`MAX_EXTRA_COLUMNS`].
    extras: Vec<(u32, String)>,
    /// Headers of extra columns past [`MAX_EXTRA_COLUMNS`], not kept.
    pub(crate) not_kept: Vec<String>,
    fields: PhantomData<F>,
}

impl<F: FieldSet> Default for Columns<F> {
    fn default() -> Self {
        Columns {
            found: vec![None; F::all().len()],
            extras: Vec::new(),
            not_kept: Vec::new(),
            fields: PhantomData,
        }
    }
}

impl<F: FieldSet> Columns<F> {
    /// Maps the cells of one row, `(column, text)`, to fields. The first column naming a field
    /// wins; a later duplicate (a second 手机 column) is ignored, never kept as an extra: it
    /// may hold the very numbers the record keeps sealed.
    pub(crate) fn from_cells<'a>(cells: impl Iterator<Item = (u32, &'a str)>) -> Columns<F> {
        let mut columns = Columns::default();
        for (col, text) in cells {
            let header = text.split_whitespace().collect::<Vec<_>>().join("");
            if let Some(field) = field_of::<F>(text) {
                let slot = &mut columns.found[field.index()];
                if slot.is_none() {
                    *slot = Some((col, header));
                }
                continue;
            }
            let normalised = normalise_header(text);
            if header.is_empty() || normalised.is_empty() || NOT_KEPT.contains(&normalised.as_str())
            {
                continue;
            }
            if columns.extras.len() >= MAX_EXTRA_COLUMNS {
                columns.not_kept.push(header);
                continue;
            }
            let mut unique = header.clone();
            let mut n = 1;
            while columns.extras.iter().any(|(_, h)| *h == unique) {
                n += 1;
                unique = format!("{header} ({n})");
            }
            columns.extras.push((col, unique));
        }
        columns
    }

    /// The extra columns: `(column, header)`, in file order.
    pub(super) fn extras(&self) -> &[(u32, String)] {
        &self.extras
    }

    /// The column of a field, if the file has it.
    pub(crate) fn column(&self, field: F) -> Option<u32> {
        self.found[field.index()].as_ref().map(|(c, _)| *c)
    }

    /// The header to name in a problem: as written in the file, or the standard one.
    pub(crate) fn header(&self, field: F) -> &str {
        self.found[field.index()]
            .as_ref()
            .map_or(field.canonical(), |(_, h)| h.as_str())
    }

    /// Whether every header key (for a roster: name and ID number) is present.
    pub(crate) fn is_header_row(&self) -> bool {
        F::header_keys().iter().all(|f| self.column(*f).is_some())
    }

    /// The header keys this row lacks, by their standard headers.
    pub(crate) fn missing_required(&self) -> Vec<String> {
        F::header_keys()
            .iter()
            .filter(|f| self.column(**f).is_none())
            .map(|f| f.canonical().to_owned())
            .collect()
    }

    /// Every column index the reader uses (fields and extras), sorted.
    pub(crate) fn used_columns(&self) -> Vec<u32> {
        let mut cols: Vec<u32> = self
            .found
            .iter()
            .flatten()
            .map(|(c, _)| *c)
            .chain(self.extras.iter().map(|(c, _)| *c))
            .collect();
        cols.sort_unstable();
        cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_with_spaces_line_breaks_stars_and_remarks_are_recognised() {
        assert_eq!(field_of::<Field>(" 姓 名 *"), Some(Field::Name));
        assert_eq!(field_of::<Field>("身份证\n号码"), Some(Field::IdNumber));
        assert_eq!(field_of::<Field>("手机号码（选填）"), Some(Field::Phone));
        assert_eq!(field_of::<Field>("在职／退休"), Some(Field::Status));
        assert_eq!(
            field_of::<Field>("是否参加医保(是/否)"),
            Some(Field::Insured)
        );
        assert_eq!(
            field_of::<Field>("公民身份号码\u{a0}"),
            Some(Field::IdNumber)
        );
        assert_eq!(field_of::<Field>("职工姓名＊"), Some(Field::Name));
    }

    #[test]
    fn a_title_or_an_unknown_header_names_no_field() {
        assert_eq!(field_of::<Field>("XX单位2025年职工医疗互助参保名单"), None);
        assert_eq!(field_of::<Field>("序号"), None);
        assert_eq!(field_of::<Field>("民族"), None);
        assert_eq!(field_of::<Field>("职工编号"), Some(Field::EmployeeNumber));
        assert_eq!(field_of::<Field>("所在部门"), Some(Field::Department));
        assert_eq!(field_of::<Field>(""), None);
    }

    #[test]
    fn the_first_of_two_columns_with_the_same_field_wins() {
        let cols = Columns::<Field>::from_cells(
            [(2, "姓名"), (5, "职工姓名"), (3, "身份证号")].into_iter(),
        );
        assert_eq!(cols.column(Field::Name), Some(2));
        assert_eq!(cols.header(Field::IdNumber), "身份证号");
        assert_eq!(cols.header(Field::Phone), "手机号码");
        assert!(cols.is_header_row());
    }

    #[test]
    fn other_headed_columns_are_kept_as_extras_but_not_the_row_number_the_problem_column_or_a_second_phone()
     {
        let cols = Columns::<Field>::from_cells(
            [
                (0, "序号"),
                (1, "姓名"),
                (2, "身份证号"),
                (3, "手机"),
                (4, "民 族"),
                (5, "联系电话"),
                (6, "政治面貌"),
                (7, "民族"),
                (8, "问题"),
                (9, " "),
            ]
            .into_iter(),
        );
        assert_eq!(
            cols.extras(),
            &[
                (4, "民族".to_owned()),
                (6, "政治面貌".to_owned()),
                (7, "民族 (2)".to_owned())
            ]
        );
        assert_eq!(cols.used_columns(), vec![1, 2, 3, 4, 6, 7]);
    }
}
