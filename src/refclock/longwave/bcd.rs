//! Binary-coded decimal as the time codes send it: each bit of a number has a weight (1, 2, 4,
//! 8 for units, 10, 20, 40, 80 for tens, 100, 200 for hundreds), in whatever order a station
//! sends them.

/// The decimal place of a weight.
fn place(weight: u32) -> u32 {
    match weight {
        0..10 => 1,
        10..100 => 10,
        _ => 100,
    }
}

/// The bits of `value` for a number's weights, the first weight in bit 0.
pub fn bcd_bits(value: u32, weights: &[u32]) -> u32 {
    weights.iter().enumerate().fold(0, |bits, (i, &w)| {
        let p = place(w);
        let set = (value / p % 10) & (w / p) != 0;
        bits | u32::from(set) << i
    })
}

/// The number a pattern of bits says (the first weight in bit 0), refusing digits above 9.
pub fn bcd_value(bits: u32, weights: &[u32]) -> Option<u32> {
    let mut digits = [0u32; 3];
    for (i, &w) in weights.iter().enumerate() {
        if bits >> i & 1 == 1 {
            let p = place(w);
            digits[p.ilog10() as usize] += w / p;
        }
    }
    digits
        .iter()
        .all(|&d| d <= 9)
        .then(|| digits[0] + 10 * digits[1] + 100 * digits[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_digits_above_nine() {
        let day = [200, 100, 80, 40, 20, 10, 8, 4, 2, 1];
        for v in [0, 9, 66, 199, 365] {
            assert_eq!(bcd_value(bcd_bits(v, &day), &day), Some(v));
        }
        let minute = [1, 2, 4, 8, 10, 20, 40];
        assert_eq!(bcd_bits(16, &minute), 0b0010110);
        assert_eq!(bcd_value(0b0001111, &minute), None, "units 15");
    }
}
