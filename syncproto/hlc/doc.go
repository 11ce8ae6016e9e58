// Package hlc is a hybrid logical clock: the source of the FeedSync `when`
// values that Meshwork writes into item histories.
//
// A Timestamp is a physical wall time in Unix milliseconds plus a logical
// counter. Timestamps order first by wall time, then by counter. A Clock
// hands out strictly increasing timestamps (Now) and takes in the
// timestamps it receives from peers (Observe): the next local timestamp is
// after max(local, remote, physical). So an update made after seeing a
// remote update is always later than it, whatever the two wall clocks say,
// and the activity stream of an object cannot be reordered by clock
// differences smaller than the bound below.
//
// # Bound on remote clocks
//
// A device whose wall clock runs ahead would, with a plain HLC, drag every
// clock it talks to forward and win every concurrent FeedSync conflict
// (the winner rule prefers the later `when`). The Clock therefore refuses
// remote timestamps more than MaxSkew (default DefaultMaxSkew, 5 minutes)
// ahead of its own physical time: Observe returns ErrClockSkew and the local
// clock does not move. Callers refuse the item that carried such a
// timestamp (syncproto does so in Object.Apply) and may retry it later; it is
// accepted once real time has caught up to within MaxSkew of it. The
// consequences for a device whose clock is a day ahead:
//
//   - its changes are refused by every device with a correct clock until its
//     timestamps are no more than MaxSkew in their future, that is for about
//     a day, and are accepted (and may win conflicts) only then;
//   - the skew does not spread: no other clock moves more than MaxSkew
//     ahead of its own physical time;
//   - when its clock is corrected, its HLC still does not go backwards, so its
//     timestamps stay a day ahead (with a growing counter) until real time
//     catches up; the protocol stays safe, the device is only delayed.
//
// # What it must never do
//
// It never reads the system clock itself: the physical time source is
// passed to NewClock. It never goes backwards.
package hlc
