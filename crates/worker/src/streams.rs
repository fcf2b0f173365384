//! A run's byte streams (`docs/protocol.md` §10): the descriptors its `streams` names, split
//! from the others when the run starts, until the handler takes them
//! ([`Context::input_stream`](crate::Context::input_stream),
//! [`Context::output_stream`](crate::Context::output_stream)); closed with the job otherwise.

use std::os::fd::OwnedFd;
use std::time::Duration;

use offload_protocol::{StreamSpec, DEFAULT_STREAM_STALL};

/// The streams of one run.
#[derive(Debug)]
pub(crate) struct RunStreams {
    pub(crate) input: Option<OwnedFd>,
    pub(crate) output: Option<OwnedFd>,
    pub(crate) stall: Duration,
}

impl Default for RunStreams {
    fn default() -> Self {
        Self {
            input: None,
            output: None,
            stall: DEFAULT_STREAM_STALL,
        }
    }
}

impl RunStreams {
    /// Takes the descriptors `spec` names out of `fds` (the rest stay, in order); an index
    /// out of range is an error naming it.
    pub(crate) fn split(spec: Option<StreamSpec>, fds: &mut Vec<OwnedFd>) -> Result<Self, String> {
        let Some(spec) = spec else {
            return Ok(Self::default());
        };
        let n = fds.len();
        let check = |i: Option<u32>| match i {
            Some(i) if i as usize >= n => Err(format!(
                "the run's stream index {i} is out of its {n} descriptors"
            )),
            _ => Ok(i.map(|i| i as usize)),
        };
        let (input, output) = (check(spec.input)?, check(spec.output)?);
        if input.is_some() && input == output {
            return Err("the run's input and output streams are the same descriptor".into());
        }
        let mut slots: Vec<Option<OwnedFd>> = std::mem::take(fds).into_iter().map(Some).collect();
        let input = input.and_then(|i| slots[i].take());
        let output = output.and_then(|i| slots[i].take());
        fds.extend(slots.into_iter().flatten());
        Ok(Self {
            input,
            output,
            stall: spec.stall(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn fds(n: usize) -> Vec<OwnedFd> {
        (0..n)
            .map(|_| std::fs::File::open("/dev/null").unwrap().into())
            .collect()
    }

    #[test]
    fn the_streams_leave_the_other_descriptors_in_order() {
        let mut all = fds(3);
        let raw: Vec<i32> = all.iter().map(AsRawFd::as_raw_fd).collect();
        let spec = StreamSpec::new(Some(2), Some(0), Duration::from_millis(7));
        let s = RunStreams::split(Some(spec), &mut all).unwrap();
        assert_eq!(s.input.as_ref().map(AsRawFd::as_raw_fd), Some(raw[2]));
        assert_eq!(s.output.as_ref().map(AsRawFd::as_raw_fd), Some(raw[0]));
        assert_eq!(s.stall, Duration::from_millis(7));
        assert_eq!(
            all.iter().map(AsRawFd::as_raw_fd).collect::<Vec<_>>(),
            [raw[1]]
        );
    }

    #[test]
    fn a_bad_index_is_refused_and_nothing_is_taken() {
        let mut all = fds(1);
        let out_of_range = StreamSpec::new(None, Some(1), Duration::ZERO);
        let e = RunStreams::split(Some(out_of_range), &mut all).unwrap_err();
        assert!(e.contains("index 1"), "{e}");
        let same = StreamSpec::new(Some(0), Some(0), Duration::ZERO);
        assert!(RunStreams::split(Some(same), &mut all).is_err());
        assert_eq!(all.len(), 1);
        let none = RunStreams::split(None, &mut all).unwrap();
        assert!(none.input.is_none() && none.output.is_none());
        assert_eq!(all.len(), 1);
    }
}
