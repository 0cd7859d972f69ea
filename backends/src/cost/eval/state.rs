//! The state a prefix of a loop order reaches (`spec/optimal.md`, "Dominance"): what the rest of
//! the allocation and the cost of every completion depend on, so that two prefixes with equal
//! states have the same completions, whose energies differ by the difference of their decided
//! energies.

use super::Evaluator;
use crate::cost::model::Rel;
use crate::cost::{AllocTrace, Allocation};

/// A boundary whose allocator decision is still open (the operand's levels above it too).
const OPEN_CUT: u16 = u16::MAX;
/// A boundary cut but not yet moved up by the stationarity merge-down (no loop relevant to the
/// operand placed after the cut yet).
const OPEN_MERGE: u16 = u16::MAX - 1;

impl Evaluator {
    /// The state after the first `j` loops of `order` (dim indices, innermost first), given its
    /// allocation and the allocator's trace, into `key`; `false` when the prefix has no state
    /// that determines its completions (an open allocator decision is not clean there, see
    /// [`AllocTrace::clean`]; orders of 128 loops or more; `j == order.len()`).
    ///
    /// `counts[p * classes..(p + 1) * classes]` is the multiset of `order[..p]` (counts per
    /// element class) for every `p` in `0..=order.len()`. The key holds: `j` and the multiset of
    /// the prefix; per operand and boundary from the lowest, either the cut (its position and
    /// multiset) and the merged boundary (the same, or [`OPEN_MERGE`]), or [`OPEN_CUT`] for the
    /// lowest open decision, after which nothing. Every cost term reads its boundaries' multisets
    /// and the product or set of the loops above them, and an open decision that is clean
    /// depends only on the multiset of the prefix and the loops after it.
    #[allow(clippy::too_many_arguments)]
    pub fn prefix_state(
        &self,
        order: &[(usize, u64)],
        alloc: &Allocation,
        trace: &AllocTrace,
        counts: &[u16],
        classes: usize,
        j: usize,
        key: &mut Vec<u16>,
    ) -> bool {
        let n = order.len();
        if n >= 128 || j >= n || counts.len() < (n + 1) * classes {
            return false;
        }
        let row = |p: usize| &counts[p * classes..(p + 1) * classes];
        key.clear();
        key.push(j as u16);
        key.extend_from_slice(row(j));
        for (k, op) in self.model.ops.iter().enumerate() {
            if trace.clean.get(k).is_none_or(|m| (m >> j) & 1 == 0) {
                return false;
            }
            let (Some(starts), Some(cut_req)) = (alloc.starts.get(k), trace.cut_req.get(k)) else {
                return false;
            };
            let m_count = starts.len() - 1;
            for (a, &c) in starts.iter().enumerate().take(m_count).skip(1) {
                if cut_req.get(a - 1).is_none_or(|&r| r > j) {
                    key.push(OPEN_CUT);
                    break;
                }
                key.push(c as u16);
                key.extend_from_slice(row(c));
                let mut i = c;
                while i < n && op.rel[order[i].0] == Rel::Ir {
                    i += 1;
                }
                if i < j {
                    key.push(i as u16);
                    key.extend_from_slice(row(i));
                } else {
                    key.push(OPEN_MERGE);
                }
            }
        }
        true
    }
}
