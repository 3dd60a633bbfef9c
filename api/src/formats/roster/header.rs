//! The header row: which column holds which field, whatever the order and the wording.

/// A field of the roster the reader understands. Any other column with a header is kept as an
/// extra column (see [`Columns::extras`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
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

impl Field {
    /// Every field, in the order of the standard template.
    pub(super) const ALL: [Field; FIELDS] = [
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

    /// The standard header, used in the template and when a column is absent.
    pub(super) fn canonical(self) -> &'static str {
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

    fn index(self) -> usize {
        match self {
            Field::Name => 0,
            Field::IdNumber => 1,
            Field::Phone => 2,
            Field::Employer => 3,
            Field::Insured => 4,
            Field::Status => 5,
            Field::Note => 6,
            Field::Sex => 7,
            Field::Department => 8,
            Field::EmployeeNumber => 9,
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
pub(super) fn normalise_header(raw: &str) -> String {
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
pub(super) fn field_of(raw: &str) -> Option<Field> {
    let header = normalise_header(raw);
    if header.is_empty() {
        return None;
    }
    Field::ALL
        .into_iter()
        .find(|f| f.aliases().iter().any(|a| *a == header))
}

/// Where each field is: its zero-based column and its header as written in the file; and the
/// other columns, kept as the clerk named them.
#[derive(Debug, Clone, Default)]
pub(super) struct Columns {
    found: [Option<(u32, String)>; FIELDS],
    /// `(column, header)` of every other column with a header, in file order, headers made
    /// unique (a repeated header gets ` (2)`, ` (3)` …); at most [`MAX_EXTRA_COLUMNS`].
    extras: Vec<(u32, String)>,
    /// Headers of extra columns past [`MAX_EXTRA_COLUMNS`], not kept.
    pub(super) not_kept: Vec<String>,
}

impl Columns {
    /// Maps the cells of one row, `(column, text)`, to fields. The first column naming a field
    /// wins; a later duplicate (a second 手机 column) is ignored, never kept as an extra: it
    /// may hold the very numbers the record keeps sealed.
    pub(super) fn from_cells<'a>(cells: impl Iterator<Item = (u32, &'a str)>) -> Columns {
        let mut columns = Columns::default();
        for (col, text) in cells {
            let header = text.split_whitespace().collect::<Vec<_>>().join("");
            if let Some(field) = field_of(text) {
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
    pub(super) fn column(&self, field: Field) -> Option<u32> {
        self.found[field.index()].as_ref().map(|(c, _)| *c)
    }

    /// The header to name in a problem: as written in the file, or the standard one.
    pub(super) fn header(&self, field: Field) -> &str {
        self.found[field.index()]
            .as_ref()
            .map_or(field.canonical(), |(_, h)| h.as_str())
    }

    /// Whether both required columns (name and ID number) are present.
    pub(super) fn is_header_row(&self) -> bool {
        self.column(Field::Name).is_some() && self.column(Field::IdNumber).is_some()
    }

    /// The required columns this row lacks, by their standard headers.
    pub(super) fn missing_required(&self) -> Vec<String> {
        [Field::Name, Field::IdNumber]
            .into_iter()
            .filter(|f| self.column(*f).is_none())
            .map(|f| f.canonical().to_owned())
            .collect()
    }

    /// Every column index the reader uses (fields and extras), sorted.
    pub(super) fn used_columns(&self) -> Vec<u32> {
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
        assert_eq!(field_of(" 姓 名 *"), Some(Field::Name));
        assert_eq!(field_of("身份证\n号码"), Some(Field::IdNumber));
        assert_eq!(field_of("手机号码（选填）"), Some(Field::Phone));
        assert_eq!(field_of("在职／退休"), Some(Field::Status));
        assert_eq!(field_of("是否参加医保(是/否)"), Some(Field::Insured));
        assert_eq!(field_of("公民身份号码\u{a0}"), Some(Field::IdNumber));
        assert_eq!(field_of("职工姓名＊"), Some(Field::Name));
    }

    #[test]
    fn a_title_or_an_unknown_header_names_no_field() {
        assert_eq!(field_of("XX单位2025年职工医疗互助参保名单"), None);
        assert_eq!(field_of("序号"), None);
        assert_eq!(field_of("民族"), None);
        assert_eq!(field_of("职工编号"), Some(Field::EmployeeNumber));
        assert_eq!(field_of("所在部门"), Some(Field::Department));
        assert_eq!(field_of(""), None);
    }

    #[test]
    fn the_first_of_two_columns_with_the_same_field_wins() {
        let cols = Columns::from_cells([(2, "姓名"), (5, "职工姓名"), (3, "身份证号")].into_iter());
        assert_eq!(cols.column(Field::Name), Some(2));
        assert_eq!(cols.header(Field::IdNumber), "身份证号");
        assert_eq!(cols.header(Field::Phone), "手机号码");
        assert!(cols.is_header_row());
    }

    #[test]
    fn other_headed_columns_are_kept_as_extras_but_not_the_row_number_the_problem_column_or_a_second_phone()
     {
        let cols = Columns::from_cells(
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
