package modbus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/weirgw/weir/sensors/modbus"
	"github.com/weirgw/weir/sensors/modbus/modbustest"
)

// A poll stamps its reading with the midpoint of the request sent and the
// response received, with half the round trip as its uncertainty.
func ExampleMaster_Do() {
	slave := modbustest.New(7, 100) // holding register i holds i
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = slave.ServeTCP(ctx, ln) }()

	m, err := modbus.NewTCP(modbus.TCPConfig{Address: ln.Addr().String(), Timeout: time.Second})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	req := modbus.Request{Function: modbus.FuncReadHoldingRegisters, Address: 10, Quantity: 2}
	var res modbus.Response // reuse across polls: no allocation
	if err := m.Do(ctx, 7, &req, &res); err != nil {
		panic(err)
	}
	stamp, uncertainty := res.Midpoint(), res.RoundTrip()/2
	fmt.Println(res.Registers, !stamp.IsZero(), uncertainty < time.Second)

	// Reading past the device's table: an exception, by name.
	_, err = m.ReadHoldingRegisters(ctx, 7, 99, 2)
	var ex *modbus.ExceptionError
	if errors.As(err, &ex) {
		fmt.Println(ex.Name())
	}
	// Output:
	// [10 11] true true
	// ILLEGAL DATA ADDRESS
}
