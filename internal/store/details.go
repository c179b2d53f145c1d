package store

import "github.com/dpe-engine/dpe/internal/model"

// DetailSet assembles the answer of InstanceStore.InstanceDetails from
// what an engine reads in turn: the instances, their steps, then the jobs
// and children the running steps wait for.
type DetailSet struct {
	out        []model.InstanceDetail
	at         map[int64]int // instance id → index in out
	jobOwner   map[int64]int // job id → index in out
	childOwner map[int64]int // child id → index in out
	// JobIDs and ChildIDs are what the running steps added so far wait
	// for: the jobs and children to read next.
	JobIDs, ChildIDs []int64
}

// NewDetailSet starts the details of ids, in that order, with the
// instances found (missing ids and repeats are left out).
func NewDetailSet(ids []int64, found map[int64]model.Instance) *DetailSet {
	d := &DetailSet{out: []model.InstanceDetail{}, at: map[int64]int{}, jobOwner: map[int64]int{}, childOwner: map[int64]int{}}
	for _, id := range ids {
		inst, ok := found[id]
		if _, dup := d.at[id]; !ok || dup {
			continue
		}
		d.at[id] = len(d.out)
		d.out = append(d.out, model.InstanceDetail{Instance: inst, Steps: []model.Step{}})
	}
	return d
}

// AddStep adds a step record of instance owner (steps come by path).
func (d *DetailSet) AddStep(owner int64, st model.Step) {
	i, ok := d.at[owner]
	if !ok {
		return
	}
	d.out[i].Steps = append(d.out[i].Steps, st)
	if st.State != model.StepRunning {
		return
	}
	if st.JobID != 0 {
		d.JobIDs = append(d.JobIDs, st.JobID)
		d.jobOwner[st.JobID] = i
	}
	if st.ChildID != 0 {
		d.ChildIDs = append(d.ChildIDs, st.ChildID)
		d.childOwner[st.ChildID] = i
	}
}

// AddJobs adds jobs read by JobIDs to the details of their instances.
func (d *DetailSet) AddJobs(jobs []model.Job) {
	for _, j := range jobs {
		if i, ok := d.jobOwner[j.ID]; ok {
			d.out[i].Jobs = append(d.out[i].Jobs, j)
		}
	}
}

// AddChildren adds the children read by ChildIDs, in ChildIDs order.
func (d *DetailSet) AddChildren(found map[int64]model.Instance) {
	for _, id := range d.ChildIDs {
		if c, ok := found[id]; ok {
			i := d.childOwner[id]
			d.out[i].Children = append(d.out[i].Children, c)
		}
	}
}

// Details returns the assembled details.
func (d *DetailSet) Details() []model.InstanceDetail { return d.out }

// InstancesByID indexes instances by id.
func InstancesByID(list []model.Instance) map[int64]model.Instance {
	m := make(map[int64]model.Instance, len(list))
	for _, inst := range list {
		m[inst.ID] = inst
	}
	return m
}
