//! Money in integer paise (1 rupee = 100 paise). Never floats: every operation is checked and
//! an overflow is an error, not a wrap.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of Indian rupees in paise.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Paise(i64);

impl Paise {
    pub const ZERO: Paise = Paise(0);

    pub const fn new(paise: i64) -> Self {
        Paise(paise)
    }

    /// Whole rupees to paise; `None` on overflow.
    pub fn from_rupees(rupees: i64) -> Option<Self> {
        rupees.checked_mul(100).map(Paise)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Paise) -> Option<Paise> {
        self.0.checked_add(other.0).map(Paise)
    }

    pub fn checked_sub(self, other: Paise) -> Option<Paise> {
        self.0.checked_sub(other.0).map(Paise)
    }

    pub fn checked_mul(self, factor: i64) -> Option<Paise> {
        self.0.checked_mul(factor).map(Paise)
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Formats with the rupee sign and Indian digit grouping: `₹1,50,000.00`.
    pub fn formatted(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Paise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let rupees = (abs / 100).to_string();
        let paise = abs % 100;
        // Indian grouping: the last three digits, then groups of two.
        let grouped = if rupees.len() <= 3 {
            rupees
        } else {
            let (head, last3) = rupees.split_at(rupees.len() - 3);
            let mut groups: Vec<&str> = Vec::new();
            let mut end = head.len();
            while end > 2 {
                groups.push(&head[end - 2..end]);
                end -= 2;
            }
            groups.push(&head[..end]);
            groups.reverse();
            format!("{},{last3}", groups.join(","))
        };
        write!(f, "{sign}₹{grouped}.{paise:02}")
    }
}

/// `mrp × (100 − discount) / 100`, rounded half-up to the paisa. `None` when the discount is
/// outside 0..=100 or the arithmetic overflows.
pub fn selling_price(mrp: Paise, discount_percent: i64) -> Option<Paise> {
    if !(0..=100).contains(&discount_percent) || mrp.is_negative() {
        return None;
    }
    let scaled = mrp.get().checked_mul(100 - discount_percent)?;
    // Half-up for non-negative values: add half the divisor before the integer division.
    Some(Paise((scaled.checked_add(50)?) / 100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_indian_digit_grouping() {
        assert_eq!(Paise::new(0).formatted(), "₹0.00");
        assert_eq!(Paise::new(5).formatted(), "₹0.05");
        assert_eq!(Paise::new(99_999).formatted(), "₹999.99");
        assert_eq!(Paise::new(150_000).formatted(), "₹1,500.00");
        assert_eq!(Paise::new(15_000_000).formatted(), "₹1,50,000.00");
        assert_eq!(Paise::new(1_234_567_890).formatted(), "₹1,23,45,678.90");
        assert_eq!(
            Paise::new(100_000_000_000).formatted(),
            "₹1,00,00,00,000.00"
        );
        assert_eq!(Paise::new(-150_000).formatted(), "-₹1,500.00");
    }

    #[test]
    fn selling_price_rounds_half_up_to_the_paisa() {
        assert_eq!(
            selling_price(Paise::new(25_000), 5),
            Some(Paise::new(23_750))
        );
        // 25050 × 95 / 100 = 23797.5 → 23798
        assert_eq!(
            selling_price(Paise::new(25_050), 5),
            Some(Paise::new(23_798))
        );
        // 10001 × 97 / 100 = 9700.97 → 9701
        assert_eq!(
            selling_price(Paise::new(10_001), 3),
            Some(Paise::new(9_701))
        );
        // 10049 × 50 / 100 = 5024.5 → 5025
        assert_eq!(
            selling_price(Paise::new(10_049), 50),
            Some(Paise::new(5_025))
        );
        assert_eq!(
            selling_price(Paise::new(10_000), 0),
            Some(Paise::new(10_000))
        );
        assert_eq!(selling_price(Paise::new(10_000), 100), Some(Paise::new(0)));
    }

    #[test]
    fn selling_price_rejects_bad_discounts_and_overflow() {
        assert_eq!(selling_price(Paise::new(10_000), 101), None);
        assert_eq!(selling_price(Paise::new(10_000), -1), None);
        assert_eq!(selling_price(Paise::new(i64::MAX), 5), None);
        assert_eq!(selling_price(Paise::new(-1), 5), None);
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Paise::new(i64::MAX).checked_add(Paise::new(1)), None);
        assert_eq!(Paise::new(i64::MIN).checked_sub(Paise::new(1)), None);
        assert_eq!(Paise::new(i64::MAX).checked_mul(2), None);
        assert_eq!(Paise::from_rupees(250), Some(Paise::new(25_000)));
    }
}
