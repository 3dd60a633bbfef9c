//! What the roster says beyond what enrolment needs — workplace, department, employee number,
//! remarks and any other column — kept as the clerk wrote it, with two exceptions: a text longer
//! than its limit is cut (with a warning), and in free text (remarks and the other columns) any
//! number long enough to be an ID, mobile, landline with area code or bank card number (11 or
//! more digits, spaces and dashes between them allowed) is masked to its first three and last
//! four characters. Those numbers belong in the sealed fields of the member record, never in
//! plain text beside it.

/// Longest workplace, department or employee number kept, in characters (the column's size).
pub(super) const SHORT_TEXT_MAX: usize = 200;

/// Longest remark or extra cell kept, in characters.
pub(super) const LONG_TEXT_MAX: usize = 500;

/// Digits in a run from which it is treated as a personal number.
const PERSONAL_NUMBER_DIGITS: usize = 11;

/// `text` cut to `max` characters; `true` when something was cut.
pub(super) fn cut(text: &str, max: usize) -> (String, bool) {
    if text.chars().count() <= max {
        (text.to_owned(), false)
    } else {
        (text.chars().take(max).collect(), true)
    }
}

fn digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

fn separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '－' | '\u{3000}')
}

/// `text` with every run of 11 or more digits (a trailing `X` of an ID number included) masked:
/// the run's first three and last four characters kept, each other digit a `*`, separators
/// dropped. `true` when something was masked.
pub(super) fn mask_personal_numbers(text: &str) -> (String, bool) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut masked = false;
    let mut i = 0;
    while i < chars.len() {
        if !digit(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The run: digits, single separators between digits, an X right after a digit.
        let mut j = i;
        let mut digits: Vec<char> = Vec::new();
        while j < chars.len() {
            let c = chars[j];
            if digit(c) {
                digits.push(c);
                j += 1;
            } else if separator(c) && chars.get(j + 1).is_some_and(|n| digit(*n)) {
                j += 1;
            } else if matches!(c, 'X' | 'x') && j > i && digit(chars[j - 1]) {
                digits.push(c);
                j += 1;
                break;
            } else {
                break;
            }
        }
        if digits.len() >= PERSONAL_NUMBER_DIGITS {
            masked = true;
            let last = digits.len() - 4;
            for (k, c) in digits.iter().enumerate() {
                out.push(if k < 3 || k >= last { *c } else { '*' });
            }
        } else {
            out.extend(&chars[i..j]);
        }
        i = j;
    }
    (out, masked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_mobiles_cards_and_landlines_with_area_codes_are_masked_in_free_text() {
        assert_eq!(
            mask_personal_numbers("紧急联系人 13812345678"),
            ("紧急联系人 138****5678".to_owned(), true)
        );
        assert_eq!(
            mask_personal_numbers("11010519491231002x"),
            ("110***********002x".to_owned(), true)
        );
        assert_eq!(
            mask_personal_numbers("卡号6222 0212 3456 7890 128。"),
            ("卡号622************0128。".to_owned(), true)
        );
        assert_eq!(mask_personal_numbers("0471-6281234").0, "047****1234");
        assert_eq!(
            mask_personal_numbers("１３８１２３４５６７８").0,
            "１３８****５６７８"
        );
    }

    #[test]
    fn short_numbers_dates_and_words_are_kept_as_written() {
        for kept in [
            "汉族",
            "2019-01-23入职",
            "6281234",
            "三车间 2班",
            "A-0012",
            "X光室",
        ] {
            assert_eq!(mask_personal_numbers(kept), (kept.to_owned(), false));
        }
    }

    #[test]
    fn long_texts_are_cut_at_their_limit() {
        assert_eq!(cut("工会", 5), ("工会".to_owned(), false));
        assert_eq!(cut("一二三四五六", 5), ("一二三四五".to_owned(), true));
    }
}
