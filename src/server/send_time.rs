//! When a reply will leave. A batch of replies goes to the kernel in one `sendmmsg`, after each
//! has been finished (its transmit timestamp written, then signed or sealed) in turn, so reply k
//! leaves after the finishing of the replies behind it and after the kernel has sent those
//! ahead of it. Its transmit timestamp is the clock read as it is finished plus that lead,
//! predicted from how long finishing and sending took in earlier batches: without it, the
//! replies late in a full batch would carry times tens of microseconds early. (Interleaved
//! clients later get the kernel's own transmit time; this is for everyone else.)

use super::respond::Reply;

/// What finishing a reply takes, by the work it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// The transmit timestamp only.
    Plain,
    /// And a MAC.
    Signed,
    /// And an NTS seal (AES-SIV of the extension fields).
    Sealed,
}

impl Work {
    pub fn of(reply: &Reply) -> Work {
        match (&reply.nts, reply.sign_with) {
            (Some(_), _) => Work::Sealed,
            (None, Some(_)) => Work::Signed,
            (None, None) => Work::Plain,
        }
    }
}

/// A duration longer than this (seconds) was the thread being descheduled, not the work: not
/// learnt from, so one preemption does not push every later timestamp late.
const OUTLIER: f64 = 200e-6;
/// The weight of each new measurement: about the last 64 batches count.
const GAIN: f64 = 1.0 / 64.0;

#[derive(Clone, Debug, Default)]
pub struct SendTime {
    /// Seconds to finish one reply, by `Work`.
    finish: [Option<f64>; 3],
    /// Seconds the kernel takes to send one message of a batch.
    per_message: Option<f64>,
}

impl SendTime {
    /// The lead (seconds) to add to the clock read as each reply is finished, in batch order.
    pub fn leads(&self, work: &[Work], leads: &mut Vec<f64>) {
        leads.clear();
        leads.resize(work.len(), 0.0);
        let per_message = self.per_message.unwrap_or(0.0);
        // The replies behind k are finished before any is sent; those ahead are sent first.
        let mut behind = 0.0;
        for (k, w) in work.iter().enumerate().rev() {
            leads[k] = behind + k as f64 * per_message;
            behind += self.finish[*w as usize].unwrap_or(0.0);
        }
    }

    /// One reply of kind `work` took `seconds` to finish.
    pub fn finished(&mut self, work: Work, seconds: f64) {
        learn(&mut self.finish[work as usize], seconds);
    }

    /// The kernel took `seconds` to send a batch of `messages`.
    pub fn sent(&mut self, messages: usize, seconds: f64) {
        // A lone message's time is mostly the system call's; only batches show the rate.
        if messages >= 2 {
            learn(&mut self.per_message, seconds / messages as f64);
        }
    }
}

fn learn(average: &mut Option<f64>, seconds: f64) {
    if !(0.0..OUTLIER).contains(&seconds) {
        return;
    }
    *average = Some(match *average {
        Some(a) => a + GAIN * (seconds - a),
        None => seconds,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reply_leads_by_the_finishing_behind_it_and_the_sending_ahead_of_it() {
        let mut t = SendTime::default();
        t.finished(Work::Plain, 0.2e-6);
        t.finished(Work::Sealed, 8e-6);
        t.sent(32, 32.0 * 1.5e-6);
        let mut leads = Vec::new();
        t.leads(
            &[Work::Plain, Work::Sealed, Work::Plain, Work::Signed],
            &mut leads,
        );
        let want = [
            8e-6 + 0.2e-6, // Signed never measured: counts nothing.
            0.2e-6 + 1.5e-6,
            2.0 * 1.5e-6,
            3.0 * 1.5e-6,
        ];
        for (got, want) in leads.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{leads:?}");
        }
    }

    #[test]
    fn nothing_learnt_leads_nothing_and_outliers_teach_nothing() {
        let mut t = SendTime::default();
        let mut leads = Vec::new();
        t.leads(&[Work::Plain; 3], &mut leads);
        assert_eq!(leads, [0.0; 3]);
        // A preempted batch, a clock stepped backwards, a lone message: ignored.
        t.sent(32, 0.01);
        t.sent(32, -1e-3);
        t.sent(1, 5e-6);
        t.finished(Work::Plain, 0.5);
        t.leads(&[Work::Plain; 3], &mut leads);
        assert_eq!(leads, [0.0; 3]);
    }

    #[test]
    fn the_rates_follow_a_change_slowly() {
        let mut t = SendTime::default();
        t.sent(10, 10e-6);
        for _ in 0..64 {
            t.sent(10, 20e-6);
        }
        let per_message = t.per_message.unwrap();
        // 1 - (1 - 1/64)^64 of the way from 1 to 2 us: about 63%.
        assert!((per_message - 1.63e-6).abs() < 0.02e-6, "{per_message}");
    }
}
