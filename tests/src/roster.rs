//! Rosters as unions keep them, made in the test: valid ID and bank card numbers, Chinese
//! headers.

use chrono::NaiveDate;
use rust_xlsxwriter::Workbook;

/// An ID number with a correct GB 11643 check character.
pub fn id_number(region: &str, birth: NaiveDate, seq: u32, male: bool) -> String {
    let seq = seq % 1000;
    // The 17th digit's parity is the sex: odd male, even female.
    let seq = if (seq % 2 == 1) == male {
        seq
    } else {
        (seq + 1) % 1000
    };
    huzhu::domain::IdNumber::complete(&format!("{region}{}{seq:03}", birth.format("%Y%m%d")))
        .expect("valid parts")
        .as_str()
        .to_owned()
}

/// A 19-digit card number passing the Luhn check.
pub fn bank_card(seq: u32) -> String {
    let body = format!("621700{seq:012}");
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|candidate| huzhu::domain::BankCardNumber::parse(candidate).is_ok())
        .expect("a card number")
}

/// One roster line.
#[derive(Clone, Debug)]
pub struct Line {
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub insured: String,
    pub status: String,
}

/// `n` valid people, born 1975–1994, distinct ID numbers (seeded by `seed`).
pub fn people(n: u32, seed: u32) -> Vec<Line> {
    let surnames = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
    let given = [
        "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳",
    ];
    (0..n)
        .map(|i| {
            let k = seed * 100_000 + i;
            let birth = NaiveDate::from_ymd_opt(
                1975 + (k % 20) as i32,
                1 + (k / 20) % 12,
                1 + (k / 240) % 28,
            )
            .expect("date");
            // Region codes vary so that (birth, seq) collisions are impossible within a run.
            let region = format!("15{:04}", (k / 6720) % 10000);
            Line {
                name: format!(
                    "{}{}{}",
                    surnames[(k % 10) as usize],
                    given[((k / 10) % 12) as usize],
                    given[((k / 120) % 12) as usize]
                ),
                id_number: id_number(&region, birth, k % 997, k.is_multiple_of(2)),
                phone: format!("13{:09}", 100_000_000 + k),
                insured: "是".into(),
                status: "在职".into(),
            }
        })
        .collect()
}

/// An `.xlsx` roster with the usual headers (a title row first, as unions do).
pub fn xlsx(lines: &[Line]) -> Vec<u8> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let _ = ws.write_string(0, 0, "职工医疗互助参互名单");
    let headers = [
        "序号",
        "姓名",
        "身份证号码",
        "手机号码",
        "工作单位",
        "是否参加医保",
        "在职/退休",
        "备注",
    ];
    for (c, h) in headers.iter().enumerate() {
        let _ = ws.write_string(1, c as u16, *h);
    }
    for (i, l) in lines.iter().enumerate() {
        let r = (i + 2) as u32;
        let _ = ws.write_number(r, 0, (i + 1) as f64);
        let _ = ws.write_string(r, 1, &l.name);
        let _ = ws.write_string(r, 2, &l.id_number);
        let _ = ws.write_string(r, 3, &l.phone);
        let _ = ws.write_string(r, 4, "本单位");
        let _ = ws.write_string(r, 5, &l.insured);
        let _ = ws.write_string(r, 6, &l.status);
    }
    wb.save_to_buffer().expect("xlsx")
}
