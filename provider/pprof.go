package provider

import (
	"net/http/pprof"

	"github.com/gin-gonic/gin"
)

// registerPprof serves Go's runtime profiles on g (/debug/pprof/, behind the
// admin token), as net/http/pprof does on http.DefaultServeMux, which
// otpgate never serves.
func registerPprof(g gin.IRouter) {
	g.GET("/", gin.WrapF(pprof.Index))
	g.GET("/cmdline", gin.WrapF(pprof.Cmdline))
	g.GET("/profile", gin.WrapF(pprof.Profile))
	g.GET("/symbol", gin.WrapF(pprof.Symbol))
	g.POST("/symbol", gin.WrapF(pprof.Symbol))
	g.GET("/trace", gin.WrapF(pprof.Trace))
	// The named profiles: heap, goroutine, allocs, block, mutex, threadcreate.
	g.GET("/:name", func(c *gin.Context) { pprof.Handler(c.Param("name")).ServeHTTP(c.Writer, c.Request) })
}
