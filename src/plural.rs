//! Counted nouns in messages: "1 line", "2 lines", never "1 lines" or "line(s)".

/// A count of things, whatever integer type holds it.
pub trait Amount: Copy {
    fn amount(self) -> u64;
}

macro_rules! amount {
    ($($t:ty),*) => {$(
        impl Amount for $t {
            fn amount(self) -> u64 {
                self as u64
            }
        }
    )*};
}
amount!(u16, u32, u64, usize);

/// `1 request`, `3 requests`: the noun as given for one, with an `s` otherwise.
pub fn count(n: impl Amount, noun: &str) -> String {
    let n = n.amount();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// [`count`] for nouns whose plural is not the singular with an `s` (`1 entry`, `2 entries`).
pub fn count_as(n: impl Amount, one: &str, many: &str) -> String {
    let n = n.amount();
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The noun alone, as [`count`] would write it after `n` (for `{n} of {total} {noun}`).
pub fn noun(n: impl Amount, noun: &str) -> String {
    if n.amount() == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_zero_is_plural() {
        assert_eq!(count(1u32, "line"), "1 line");
        assert_eq!(count(0usize, "line"), "0 lines");
        assert_eq!(count(61usize, "template"), "61 templates");
        assert_eq!(count_as(2u64, "entry", "entries"), "2 entries");
        assert_eq!(noun(1u16, "request"), "request");
    }
}
