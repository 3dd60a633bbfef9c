//! The data of `bench/settlements.sh` (issue 21): members to bulk-load and the bureau's
//! inpatient settlement file to import against them.
//!
//! `cargo run --release -p huzhu-tests --example settlement_bench -- OUT_DIR MEMBERS ROWS`
//! (defaults 1,000,000 members, 200,000 rows). Reads the PII keys the server will use from
//! `HUZHU_PII__ENCRYPTION_KEY` and `HUZHU_PII__LOOKUP_KEY` (base64, key id 1) and writes:
//! - `members.csv`: `pid,name,id_number_cipher,id_number_lookup,birth_date,sex`, for `\copy`;
//! - `settlements.xlsx`: the file, with the bureau's headers, and `settlements.csv`, the same
//!   rows for the `COPY` reference.
//!
//! Of every 100 rows: 80 stays of members in 2025; 8 of people who are not members; 4
//! outpatient settlements and 3 of another insurance (of members); 2 repeating the previous
//! row's settlement ID; 1 of a member in hospital in 2024 (not covered); 2 second stays of a
//! member of an earlier row (judged after the first).

use std::fmt::Write as _;
use std::io::Write as _;

use chrono::{Duration, NaiveDate};
use huzhu::auth::crypto::{FieldCipher, LookupHasher, PiiKind, PiiVault};
use rust_xlsxwriter::Workbook;

const HEADERS: [&str; 19] = [
    "结算ID",
    "姓名",
    "证件号码",
    "定点医疗机构名称",
    "入院日期",
    "出院日期",
    "住院天数",
    "医疗费用总额",
    "统筹基金支付",
    "大病保险支付",
    "起付标准",
    "政策范围内个人自付",
    "个人自费",
    "结算日期",
    "险种类型",
    "医疗类别",
    "主要诊断编码",
    "主要诊断名称",
    "离院方式",
];

/// A valid 18-digit resident ID number (GB 11643 check digit) for `region`, `born` and `seq`.
fn id_number(region: &str, born: NaiveDate, seq: u32) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let body = format!("{region}{}{:03}", born.format("%Y%m%d"), seq % 1000);
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let mut id = body;
    id.push(char::from(CHECK[(sum % 11) as usize]));
    id
}

/// Member `i`'s birth date and ID number (unique for i < 10,000,000).
fn member_id(i: u32) -> (NaiveDate, String) {
    let born = NaiveDate::from_ymd_opt(1966, 1, 1).unwrap() + Duration::days(i64::from(i % 10_000));
    (born, id_number("150102", born, i / 10_000))
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = std::path::PathBuf::from(args.get(1).map_or("/tmp/settlement-bench", String::as_str));
    let members: u32 = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rows: u32 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    std::fs::create_dir_all(&out)?;
    let key = |name: &str| std::env::var(name).map_err(|_| anyhow::anyhow!("{name} is not set"));
    let vault = PiiVault::new(
        FieldCipher::from_base64_with_version(&key("HUZHU_PII__ENCRYPTION_KEY")?, 1)?,
        LookupHasher::from_base64(&key("HUZHU_PII__LOOKUP_KEY")?)?,
    );

    let mut csv = std::io::BufWriter::new(std::fs::File::create(out.join("members.csv"))?);
    for i in 0..members {
        let (born, id) = member_id(i);
        let (cipher, lookup) = vault.seal(PiiKind::IdNumber, &id)?;
        let sex = if i % 2 == 0 { "F" } else { "M" };
        writeln!(
            csv,
            "bench-member-{i:07},参互职工{i},{cipher},{lookup},{born},{sex}"
        )?;
    }
    csv.flush()?;

    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("住院结算明细")?;
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    let mut plain = std::io::BufWriter::new(std::fs::File::create(out.join("settlements.csv"))?);
    let year_start = NaiveDate::from_ymd_opt(2025, 1, 5).unwrap();
    let mut previous_id = String::new();
    for k in 0..rows {
        let class = k % 100;
        // Members spread over the whole roster (7919 is prime to 10^6: distinct for k < 10^6).
        let pick = |k: u32| (u64::from(k) * 7919 % u64::from(members)) as u32;
        let (member, admitted) = match class {
            98 | 99 => (
                pick(k - class),
                year_start + Duration::days(i64::from(k % 300) + 40),
            ),
            97 => (pick(k), NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()),
            _ => (pick(k), year_start + Duration::days(i64::from(k % 290))),
        };
        let stay = i64::from(3 + k % 18);
        let discharged = admitted + Duration::days(stay);
        let id = if (80..88).contains(&class) {
            id_number(
                "110101",
                NaiveDate::from_ymd_opt(1975, 1, 1).unwrap() + Duration::days(i64::from(k % 9000)),
                k / 9000,
            )
        } else {
            member_id(member).1
        };
        let settlement_id = if class == 95 || class == 96 {
            previous_id.clone()
        } else {
            format!("JS2025{k:08}")
        };
        previous_id = settlement_id.clone();
        let total = 500_000 + i64::from(k % 97) * 75_000;
        let fund = total * 6 / 10;
        let critical = if total > 6_000_000 { total / 20 } else { 0 };
        let eligible = total / 4;
        let self_funded = total / 20;
        let insurance = if (92..95).contains(&class) {
            "城乡居民基本医疗保险"
        } else {
            "职工基本医疗保险"
        };
        let category = if (88..92).contains(&class) {
            "普通门诊"
        } else {
            "普通住院"
        };
        let values: [String; 19] = [
            settlement_id,
            format!("参互职工{member}"),
            id,
            "内蒙古医科大学附属医院".to_owned(),
            admitted.to_string(),
            discharged.to_string(),
            stay.to_string(),
            yuan(total),
            yuan(fund),
            yuan(critical),
            "800.00".to_owned(),
            yuan(eligible),
            yuan(self_funded),
            (discharged + Duration::days(1)).to_string(),
            insurance.to_owned(),
            category.to_owned(),
            "I63.9".to_owned(),
            "脑梗死".to_owned(),
            "1".to_owned(),
        ];
        let row = k + 1;
        let mut line = String::new();
        for (c, v) in values.iter().enumerate() {
            sheet.write_string(row, c as u16, v)?;
            if c > 0 {
                line.push(',');
            }
            write!(line, "{v}")?;
        }
        writeln!(plain, "{line}")?;
    }
    plain.flush()?;
    workbook.save(out.join("settlements.xlsx"))?;
    println!(
        "wrote {members} members and {rows} settlement rows to {}",
        out.display()
    );
    Ok(())
}
