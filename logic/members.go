package logic

import (
	"fmt"
	"sync"

	"gorm.io/gorm"

	"github.com/resonance-im/resonance/kitex_gen/common"
)

// memberCacheSize bounds the groups whose member lists are cached.
const memberCacheSize = 4096

// memberSet is the active members of a group at one MemberVer.
type memberSet struct {
	ver   int64
	ids   []int64
	roles map[int64]common.GroupRole
	// joinSeqs are the members' first readable seqs (memberRow.JoinSeq).
	joinSeqs map[int64]int64
}

// memberCache keeps member lists by group and version. A list is looked up
// with the version read from the group's locked row, so a hit is exactly
// the committed membership: a change bumps the version under the same lock
// and so misses. Changes never store into the cache (their transaction may
// still roll back); only reads at a committed version do.
type memberCache struct {
	mu     sync.Mutex
	groups map[string]*memberSet
}

func (c *memberCache) get(convID string, ver int64) *memberSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ms := c.groups[convID]; ms != nil && ms.ver == ver {
		return ms
	}
	return nil
}

func (c *memberCache) put(convID string, ms *memberSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups == nil {
		c.groups = make(map[string]*memberSet)
	}
	if len(c.groups) >= memberCacheSize {
		for id := range c.groups { // drop an arbitrary tenth
			delete(c.groups, id)
			if len(c.groups) < memberCacheSize*9/10 {
				break
			}
		}
	}
	c.groups[convID] = ms
}

// activeMembers returns the active members of group c, whose row tx has
// locked or read at c.MemberVer.
func (s *Service) activeMembers(tx *gorm.DB, c *convRow) (*memberSet, error) {
	if ms := s.members.get(c.ID, c.MemberVer); ms != nil {
		return ms, nil
	}
	rows, err := loadMembers(tx, c.ID)
	if err != nil {
		return nil, err
	}
	ms := &memberSet{ver: c.MemberVer, ids: make([]int64, len(rows)),
		roles:    make(map[int64]common.GroupRole, len(rows)),
		joinSeqs: make(map[int64]int64, len(rows))}
	for i, r := range rows {
		ms.ids[i] = r.UserID
		ms.roles[r.UserID] = common.GroupRole(r.Role)
		ms.joinSeqs[r.UserID] = r.JoinSeq
	}
	s.members.put(c.ID, ms)
	return ms, nil
}

// loadMembers reads the active member rows of convID.
func loadMembers(tx *gorm.DB, convID string) ([]memberRow, error) {
	var rows []memberRow
	err := tx.Where("conv_id = ? AND left_seq = 0", convID).Order("user_id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("members of conv=%s: %w", convID, err)
	}
	return rows, nil
}
