package console

import (
	"fmt"
	"time"
)

// Day is one day of the overview chart.
type Day struct {
	Date       time.Time
	Unverified int // addresses domainguard unverified
	Lapsed     int // domains that turned non-active
}

// Chart is the overview's server-rendered SVG bar chart: for each day, two
// bars side by side (unverifications, lapses), scaled to the largest value.
type Chart struct {
	Width, Height, Top, Bottom, Left int
	Base                             int // y of the x axis
	Days                             []Day
	Bars                             []Bar
	Max                              int
	Ticks                            []Tick
	TotalUnverified, TotalLapsed     int
}

// Bar is one rectangle; Class picks its colour in the stylesheet.
type Bar struct {
	X, Y, W, H int
	Class      string
	Title      string
}

// Tick is an axis label.
type Tick struct {
	X, Y  int
	Label string
}

func newChart(days []Day) Chart {
	c := Chart{Width: 900, Height: 220, Top: 10, Bottom: 30, Left: 40, Days: days}
	c.Base = c.Height - c.Bottom
	for _, d := range days {
		c.Max = max(c.Max, d.Unverified, d.Lapsed)
		c.TotalUnverified += d.Unverified
		c.TotalLapsed += d.Lapsed
	}
	plotH := c.Height - c.Top - c.Bottom
	slot := (c.Width - c.Left) / max(len(days), 1)
	scale := func(n int) int {
		if c.Max == 0 || n == 0 {
			return 0
		}
		return max(1, n*plotH/c.Max)
	}
	for i, d := range days {
		x := c.Left + i*slot
		title := fmt.Sprintf("%s: %d unverified, %d lapsed", d.Date.Format("2006-01-02"), d.Unverified, d.Lapsed)
		if h := scale(d.Unverified); h > 0 {
			c.Bars = append(c.Bars, Bar{X: x, Y: c.Top + plotH - h, W: slot / 2, H: h, Class: "unverified", Title: title})
		}
		if h := scale(d.Lapsed); h > 0 {
			c.Bars = append(c.Bars, Bar{X: x + slot/2, Y: c.Top + plotH - h, W: slot / 2, H: h, Class: "lapsed", Title: title})
		}
		if i%15 == 0 || i == len(days)-1 {
			c.Ticks = append(c.Ticks, Tick{X: x, Y: c.Height - 10, Label: d.Date.Format("Jan 2")})
		}
	}
	return c
}
