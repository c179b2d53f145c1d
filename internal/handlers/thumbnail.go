package handlers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
)

// thumbnailHandler runs media.thumbnail.
type thumbnailHandler struct {
	cfg   Config
	spec  jobtype.Spec
	tools ffTools
}

// thumbnailParams are media.thumbnail's params, normalised by check.
type thumbnailParams struct {
	From   string          `json:"from"`
	To     string          `json:"to"`
	At     *model.Duration `json:"at"`
	Width  *int            `json:"width"`
	Format string          `json:"format"`
}

var imageExts = map[string]string{".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}

// check fills in the defaults and refuses values out of range.
func (p *thumbnailParams) paths() (from, to *string) { return &p.From, &p.To }

func (p *thumbnailParams) check() error {
	if p.Format == "" {
		if p.Format = containerOf(p.To, imageExts); p.Format == "" {
			p.Format = "png"
		}
	}
	if p.Width == nil {
		w := 320
		p.Width = &w
	}
	if w := *p.Width; w != 0 && (w < 16 || w > 4096) {
		return model.Invalid("params.width", "%d: want 0 or 16 to 4096", w)
	}
	if p.At == nil {
		at := model.Duration(time.Second)
		p.At = &at
	}
	return nil
}

// thumbnailArgs is the ffmpeg command line writing the frame at at (within
// the video) of from to out.
func thumbnailArgs(tools ffTools, p thumbnailParams, at time.Duration, from, out string) []string {
	a := append([]string{tools.ffmpeg}, ffCommon...)
	// -ss before -i seeks the input: fast, and exact since ffmpeg 2.1.
	a = append(a, "-ss", strconv.FormatFloat(at.Seconds(), 'f', 3, 64), "-i", ffInput(from),
		"-map", "0:v:0", "-frames:v", "1", "-an")
	if *p.Width != 0 {
		a = append(a, "-vf", fmt.Sprintf("scale=%d:-2", *p.Width))
	}
	if p.Format == "jpeg" {
		a = append(a, "-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p")
	} else {
		a = append(a, "-c:v", "png")
	}
	return append(a, "-f", "image2", "-update", "1", "-progress", "pipe:1", "-y", ffInput(out))
}

// thumbnailResult is the result of media.thumbnail.
type thumbnailResult struct {
	From        string  `json:"from"`
	To          string  `json:"to"`
	AtS         float64 `json:"at_s"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	Format      string  `json:"format"`
	AlreadyDone bool    `json:"already_done"`
}

// Run writes the thumbnail unless it is already made.
func (h *thumbnailHandler) Run(ctx context.Context, t Task) (any, error) {
	name := jobtype.MediaThumbnail
	var p thumbnailParams
	if err := h.cfg.decodeFromTo(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	from, to := p.From, p.To
	res := thumbnailResult{From: from, To: to, Format: p.Format}
	err := runMedia(ctx, h.cfg, t, name, p, from, to, false, &res.AlreadyDone, func(out string, report *ffProgress) error {
		src, err := probe(ctx, h.tools, from)
		if err != nil {
			return err
		}
		if src.VideoCount == 0 {
			return Permanent(fmt.Errorf("%s: no video stream", from))
		}
		at := p.At.D()
		if d := time.Duration(src.durationRaw * float64(time.Second)); d > 0 && at >= d {
			at = d / 2
		}
		res.AtS = round3(at.Seconds())
		_, err = ffRun(ctx, thumbnailArgs(h.tools, p, at, from, out), report, 0)
		return ffErr(err)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	img, err := probe(ctx, h.tools, to)
	if err != nil {
		return nil, fmt.Errorf("%s: probe the output: %w", name, err)
	}
	if len(img.Streams) > 0 {
		res.Width, res.Height = img.Streams[0].Width, img.Streams[0].Height
	}
	return res, nil
}
