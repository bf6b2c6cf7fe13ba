package gateway

// withPipeline is a gateway that is not running, whose readers (status,
// metrics, the admin socket's handlers) see p.
func withPipeline(p *pipeline) *Gateway {
	g := &Gateway{}
	g.live.Store(p)
	return g
}
