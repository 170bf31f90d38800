package failover

import (
	"fmt"
	"sort"
	"time"
)

// Override records a human decision that stands in for one condition of
// the failover rule. Who and Reason are required and end up in the audit
// log.
type Override struct {
	Who    string `json:"who"`
	Reason string `json:"reason"`
}

// Candidate is a replica considered for promotion, as probed now.
type Candidate struct {
	Member Member `json:"member"`
	// Reachable is false when the probe failed; Err says why.
	Reachable bool   `json:"reachable"`
	Err       string `json:"err,omitempty"`
	State     State  `json:"state"`
	// SiteDown is the verdict on the candidate's own site.
	SiteDown bool `json:"siteDown"`
	// LagBytes and LagTime are the replica's lag behind the primary's last
	// known position; LagKnown is false when the primary was never
	// observed (then the lag cannot be proven to be within any RPO).
	LagBytes uint64        `json:"lagBytes"`
	LagTime  time.Duration `json:"lagTime"`
	LagKnown bool          `json:"lagKnown"`
}

// WithinRPO reports whether the candidate's lag is provably within rpo. An
// RPO of zero needs a lag of zero bytes.
func (c Candidate) WithinRPO(rpo time.Duration) bool {
	if !c.LagKnown {
		return false
	}
	if c.LagBytes == 0 {
		return true
	}
	return rpo > 0 && c.LagTime <= rpo
}

// RuleInput is everything the failover rule looks at.
type RuleInput struct {
	// Primary is the current primary (the epoch's, or the topology's).
	Primary Member
	// SiteDown is the verdict on the primary's site.
	SiteDown bool
	// AssumeSiteDown, when set, stands in for the verdict.
	AssumeSiteDown *Override
	// FenceChecked says whether Fenced is known yet: the rule is evaluated
	// once before fencing (to choose, without side effects) and once after.
	FenceChecked bool
	// Fenced is true when the old primary was fenced (directly or by STONITH).
	Fenced bool
	// AssumeFenced, when set, stands in for a successful fence.
	AssumeFenced *Override
	// RPO is the datastore's recovery point objective.
	RPO time.Duration
	// AcceptLoss, when set, allows promoting a replica beyond the RPO.
	AcceptLoss *Override
	// To restricts the choice to one site; empty means any surviving site.
	To         string
	Candidates []Candidate
}

// Decision is the rule's answer.
type Decision struct {
	// Allowed is true when the chosen candidate may be promoted.
	Allowed bool
	// Chosen is the candidate to promote (valid when Allowed, and also on
	// an RPO refusal: the best candidate that was refused).
	Chosen Candidate
	// LossAccepted is true when Chosen is beyond the RPO and a human
	// accepted the loss.
	LossAccepted bool
	// Err is the sentinel error of a refusal, wrapped with the reason.
	Err error
	// Notes explain the decision, for people and the audit log.
	Notes []string
}

// Evaluate applies the failover rule of DESIGN.md. It is pure.
func Evaluate(in RuleInput) Decision {
	var d Decision
	for _, o := range []*Override{in.AssumeSiteDown, in.AssumeFenced, in.AcceptLoss} {
		if o != nil && (o.Who == "" || o.Reason == "") {
			d.Err = ErrOverride
			return d
		}
	}
	switch {
	case in.SiteDown:
		d.Notes = append(d.Notes, fmt.Sprintf("site %s is down by verdict", in.Primary.Site))
	case in.AssumeSiteDown != nil:
		d.Notes = append(d.Notes, fmt.Sprintf("site %s taken as down by %s: %s", in.Primary.Site, in.AssumeSiteDown.Who, in.AssumeSiteDown.Reason))
	default:
		d.Err = fmt.Errorf("%w: %s", ErrSiteUp, in.Primary.Site)
		return d
	}
	var eligible []Candidate
	for _, c := range in.Candidates {
		switch {
		case c.Member.Same(in.Primary):
		case c.Member.Site == in.Primary.Site:
			d.Notes = append(d.Notes, fmt.Sprintf("%s: in the primary's site", c.Member))
		case c.SiteDown:
			d.Notes = append(d.Notes, fmt.Sprintf("%s: its site is down", c.Member))
		case in.To != "" && c.Member.Site != in.To:
		case !c.Reachable:
			d.Notes = append(d.Notes, fmt.Sprintf("%s: unreachable: %s", c.Member, c.Err))
		case c.State.Role != RoleReplica:
			d.Notes = append(d.Notes, fmt.Sprintf("%s: role %s, not a replica", c.Member, c.State.Role))
		default:
			eligible = append(eligible, c)
		}
	}
	if len(eligible) == 0 {
		where := "a surviving site"
		if in.To != "" {
			where = "site " + in.To
		}
		d.Err = fmt.Errorf("%w in %s", ErrNoCandidate, where)
		return d
	}
	sort.SliceStable(eligible, func(i, j int) bool {
		a, b := eligible[i], eligible[j]
		if wa, wb := a.WithinRPO(in.RPO), b.WithinRPO(in.RPO); wa != wb {
			return wa
		}
		if sa, sb := a.Member.Mode == "sync", b.Member.Mode == "sync"; sa != sb {
			return sa
		}
		return a.State.Position > b.State.Position
	})
	d.Chosen = eligible[0]
	if !d.Chosen.WithinRPO(in.RPO) {
		lag := fmt.Sprintf("lag %d bytes, %s", d.Chosen.LagBytes, d.Chosen.LagTime)
		if !d.Chosen.LagKnown {
			lag = "lag unknown (primary never observed)"
		}
		if in.AcceptLoss == nil {
			d.Err = fmt.Errorf("%w: best replica %s has %s, RPO %s", ErrRPO, d.Chosen.Member, lag, in.RPO)
			return d
		}
		d.LossAccepted = true
		d.Notes = append(d.Notes, fmt.Sprintf("%s beyond RPO %s (%s): loss accepted by %s: %s",
			d.Chosen.Member, in.RPO, lag, in.AcceptLoss.Who, in.AcceptLoss.Reason))
	} else {
		d.Notes = append(d.Notes, fmt.Sprintf("%s within RPO %s (lag %d bytes, %s)", d.Chosen.Member, in.RPO, d.Chosen.LagBytes, d.Chosen.LagTime))
	}
	if in.FenceChecked {
		switch {
		case in.Fenced:
			d.Notes = append(d.Notes, fmt.Sprintf("old primary %s fenced", in.Primary))
		case in.AssumeFenced != nil:
			d.Notes = append(d.Notes, fmt.Sprintf("old primary %s taken as fenced by %s: %s", in.Primary, in.AssumeFenced.Who, in.AssumeFenced.Reason))
		default:
			d.Err = fmt.Errorf("%w: %s", ErrFenceFailed, in.Primary)
			return d
		}
	}
	d.Allowed = true
	return d
}
