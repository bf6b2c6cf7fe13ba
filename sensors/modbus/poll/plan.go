package poll

import (
	"cmp"
	"slices"

	"github.com/weirgw/weir/sensors/modbus"
)

// planned is one read request of a device's poll and the registers it
// carries.
type planned struct {
	req   modbus.Request
	items []planItem
}

// planItem is one register map entry at offset within its request.
type planItem struct {
	reg    int // index in DeviceConfig.Registers
	offset int
}

var tableFunc = map[string]modbus.FunctionCode{
	"coil": modbus.FuncReadCoils, "discrete": modbus.FuncReadDiscreteInputs,
	"input": modbus.FuncReadInputRegisters, "holding": modbus.FuncReadHoldingRegisters,
}

// plan turns a device's register map into read requests: per table, in
// address order, neighbours at most max_gap apart are merged while the
// request stays within the specification's limit (125 registers, 2000
// bits); with coalescing off every register is a request of its own.
// Overlapping entries (a bitfield and the same register as uint16) share
// a request.
func plan(d DeviceConfig) []planned {
	idx := make([]int, len(d.Registers))
	for i := range idx {
		idx[i] = i
	}
	return planRegisters(d, idx)
}

// planRegisters plans the registers of d at the indices idx.
func planRegisters(d DeviceConfig, idx []int) []planned {
	idx = slices.Clone(idx)
	order := map[string]int{"coil": 0, "discrete": 1, "input": 2, "holding": 3}
	slices.SortStableFunc(idx, func(a, b int) int {
		ra, rb := d.Registers[a], d.Registers[b]
		return cmp.Or(cmp.Compare(order[ra.Register], order[rb.Register]), cmp.Compare(ra.Address, rb.Address))
	})
	var out []planned
	var cur *planned
	var start, end int // of cur: addresses [start, end)
	for _, i := range idx {
		r := d.Registers[i]
		limit := modbus.MaxReadRegisters
		if r.isBit() {
			limit = modbus.MaxReadBits
		}
		rEnd := r.Address + r.count()
		join := cur != nil && d.Coalesce != CoalesceOff && cur.req.Function == tableFunc[r.Register] &&
			r.Address <= end+d.MaxGap && max(end, rEnd)-start <= limit
		if !join {
			out = append(out, planned{req: modbus.Request{Function: tableFunc[r.Register], Address: uint16(r.Address)}})
			cur = &out[len(out)-1]
			start, end = r.Address, rEnd
		}
		end = max(end, rEnd)
		cur.req.Quantity = uint16(end - start)
		cur.items = append(cur.items, planItem{reg: i, offset: r.Address - start})
	}
	return out
}
