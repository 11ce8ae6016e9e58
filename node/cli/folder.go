package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/meshwork/meshwork/node"
)

// folderCmds: folder (add/join/list/remove/share/files/wait), wait, history,
// restore, news, fetch, evict.
func folderCmds(cl func() (*client, error), stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{folderCmd(cl, stdout, stderr), waitCmd(cl, stdout, stderr), historyCmd(cl, stdout), restoreCmd(cl, stdout),
		newsCmd(cl, stdout), pathsCmd(cl, stdout, "fetch"), pathsCmd(cl, stdout, "evict")}
}

// folderCmd is 'mesh folder' and its subcommands.
func folderCmd(cl func() (*client, error), stdout, stderr io.Writer) *cobra.Command {
	folder := &cobra.Command{Use: "folder", Short: "Share directories between the mesh's devices"}
	folder.AddCommand(folderAddCmd(cl, stdout), folderJoinCmd(cl, stdout, stderr), folderListCmd(cl, stdout),
		folderRemoveCmd(cl, stdout), folderShareCmd(cl, stdout), filesCmd(cl, stdout))
	folder.AddCommand(waitCmd(cl, stdout, stderr)) // 'mesh folder wait' is 'mesh wait'
	return folder
}

// folderAddCmd is 'mesh folder add PATH'.
func folderAddCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var addName string
	cmd := &cobra.Command{
		Use:   "add PATH [--name NAME]",
		Short: "Share a directory as a new folder of the mesh",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			var out struct{ Name, Path string }
			if err := c.call("POST", "/v1/folders", map[string]string{"path": abs, "name": addName}, &out, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "sharing %s as folder %q; on another device: mesh folder join %s PATH\n", out.Path, out.Name, out.Name)
			return nil
		}),
	}
	cmd.Flags().StringVar(&addName, "name", "", "the folder's name in the mesh (default: the directory's name)")
	return cmd
}

// folderJoinCmd is 'mesh folder join NAME PATH'.
func folderJoinCmd(cl func() (*client, error), stdout, stderr io.Writer) *cobra.Command {
	var joinMode string
	var wait, quiet bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "join NAME PATH [--mode full|metadata|send-only|receive-only] [--wait [--timeout D] [--quiet]]",
		Short: "Sync an existing folder of the mesh into PATH on this device",
		Long: `Sync an existing folder of the mesh into PATH on this device. With --wait,
return only when the copy here is in sync (as 'mesh wait NAME' does), showing
files and bytes done, the rate and the time left meanwhile.`,
		Args: cobra.ExactArgs(2),
		RunE: withClient(cl, func(c *client, args []string) error {
			abs, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			var out struct{ Name, Path string }
			if err := c.call("POST", "/v1/folders/join", map[string]string{"name": args[0], "path": abs, "mode": joinMode}, &out, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "syncing folder %q into %s\n", out.Name, out.Path)
			if !wait {
				return nil
			}
			return waitWithProgress(c, out.Name, timeout, quiet, stdout, stderr)
		}),
	}
	cmd.Flags().StringVar(&joinMode, "mode", "full", "full; metadata (names everywhere, content with mesh fetch/evict); send-only; receive-only")
	cmd.Flags().BoolVar(&wait, "wait", false, "return when the copy here is in sync, showing progress")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait: give up after this long")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "with --wait: no progress display")
	return cmd
}

// folderListCmd is 'mesh folder list'.
func folderListCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var listJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "The mesh's folders and their state on this device",
		Args:  cobra.NoArgs,
		RunE: withClient(cl, func(c *client, args []string) error {
			var infos []node.FolderInfo
			if done, err := c.getJSON("/v1/folders", &infos, listJSON, stdout); done || err != nil {
				return err
			}
			printFolders(stdout, infos)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	return cmd
}

// folderRemoveCmd is 'mesh folder remove NAME'.
func folderRemoveCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Stop syncing a folder on this device (its files stay)",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			if err := c.call("DELETE", "/v1/folders/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "stopped syncing %q here; its files are left in place\n", args[0])
			return nil
		}),
	}
}

// folderShareCmd is 'mesh folder share NAME DEVICE'.
func folderShareCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "share NAME DEVICE --role reader|editor|owner|none",
		Short: "Set a device's role in a folder (owner only); readers get changes but theirs are refused",
		Args:  cobra.ExactArgs(2),
		RunE: withClient(cl, func(c *client, args []string) error {
			if err := c.call("POST", "/v1/folders/share", map[string]string{"name": args[0], "device": args[1], "role": role}, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s is now %s of folder %q\n", args[1], role, args[0])
			return nil
		}),
	}
	cmd.Flags().StringVar(&role, "role", "editor", "reader, editor, owner or none")
	return cmd
}

// historyCmd is 'mesh history PATH'.
func historyCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var histJSON bool
	cmd := &cobra.Command{
		Use:   "history PATH [--json]",
		Short: "Kept versions of a file (replaced or deleted), newest first",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			var vs []node.HistoryEntry
			if done, err := c.getJSON("/v1/history?"+url.Values{"path": {abs}}.Encode(), &vs, histJSON, stdout); done || err != nil {
				return err
			}
			if len(vs) == 0 {
				fmt.Fprintf(stdout, "no kept versions of %s\n", args[0])
				return nil
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tBY\tKEPT\tMODIFIED\tSIZE")
			for _, v := range vs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\n", v.N, v.By, v.Kept.Local().Format("2006-01-02 15:04:05"), v.ModTime.Local().Format("2006-01-02 15:04:05"), v.Size)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&histJSON, "json", false, "print JSON")
	return cmd
}

// restoreCmd is 'mesh restore PATH'.
func restoreCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "restore PATH [--version N]",
		Short: "Bring back a kept version of a file (as a new change that syncs)",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if err := c.call("POST", "/v1/restore", map[string]any{"path": abs, "version": version}, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "restored %s (version %d)\n", args[0], max(version, 1))
			return nil
		}),
	}
	cmd.Flags().IntVar(&version, "version", 1, "which kept version (see mesh history)")
	return cmd
}

// newsCmd is 'mesh news'.
func newsCmd(cl func() (*client, error), stdout io.Writer) *cobra.Command {
	var newsJSON, follow bool
	cmd := &cobra.Command{
		Use:   "news [--follow] [--json]",
		Short: "What happened in the mesh: files changed, devices joined or revoked, tunnels opened",
		Args:  cobra.NoArgs,
		RunE: withClient(cl, func(c *client, args []string) error {
			print := func(e node.NewsEntry) {
				fmt.Fprintf(stdout, "%s  %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Text)
			}
			if follow {
				return c.stream("GET", "/v1/news?follow=1", nil, func(line []byte) error {
					if newsJSON {
						_, err := fmt.Fprintf(stdout, "%s\n", line)
						return err
					}
					var e node.NewsEntry
					if err := json.Unmarshal(line, &e); err != nil {
						return err
					}
					print(e)
					return nil
				})
			}
			var list []node.NewsEntry
			if done, err := c.getJSON("/v1/news", &list, newsJSON, stdout); done || err != nil {
				return err
			}
			for _, e := range list {
				print(e)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&newsJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events as they happen")
	return cmd
}

func printFolders(w io.Writer, infos []node.FolderInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FOLDER\tPATH\tROLE\tITEMS\tBYTES\tIN SYNC\tTRANSFERRING\tCONFLICTS\tERROR")
	for _, f := range infos {
		path := "(not synced here)"
		if f.Path != nil {
			path = *f.Path
		}
		errKind := "-"
		if f.Error != nil {
			errKind = printable(f.Error.Kind)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0f%%\t%d\t%d\t%s\n", f.Name, path, f.Role, f.Items, f.Bytes, 100*f.InSync, len(f.Transferring), f.Conflicts, errKind)
	}
	_ = tw.Flush()
	for _, f := range infos {
		if p := f.Progress; p != nil && f.InSync < 1 && (p.FilesDone < p.FilesTotal || p.BytesDone < p.BytesTotal) {
			fmt.Fprintf(w, "%s: %s\n", printable(f.Name), progressText(*p))
		}
	}
	for _, f := range infos {
		if len(f.Behind) > 0 {
			fmt.Fprintf(w, "%s: not in sync: %s\n", printable(f.Name), printable(strings.Join(f.Behind, "; ")))
		}
	}
	for _, f := range infos {
		if e := f.Error; e != nil {
			files := "1 file"
			if e.Files != 1 {
				files = fmt.Sprintf("%d files", e.Files)
			}
			fmt.Fprintf(w, "error in folder %s: %s: %s not written here, last %q at %s: %s\n", f.Name, printable(e.Kind), files,
				e.Path, e.Time.Local().Format("2006-01-02 15:04:05"), printable(e.Error))
		}
	}
	for _, f := range infos {
		if s := f.Storage; s != nil {
			fmt.Fprintf(w, "storage peer %s holds %d of %d files of %s (%d of %d bytes)\n", s.Peer, s.HeldFiles, s.Files, f.Name, s.HeldBytes, s.Bytes)
		}
	}
}

// waitWithProgress is mesh wait: the daemon's wait, with the folder's
// progress drawn on stderr meanwhile unless quiet.
func waitWithProgress(c *client, name string, timeout time.Duration, quiet bool, stdout, stderr io.Writer) error {
	stop := func() {}
	if !quiet {
		stop = watchProgress(c, name, stderr).stop
	}
	q := url.Values{"timeout": {timeout.String()}}
	var res node.WaitResult
	err := c.callNoTimeout("GET", "/v1/folders/"+url.PathEscape(name)+"/wait?"+q.Encode(), nil, &res)
	stop() // the bar cleared before the result or the error is printed
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, printable(res.String()))
	return nil
}

// printable replaces control characters (an error text may quote a name a
// peer chose) so that they cannot drive the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}

// waitCmd is 'mesh wait NAME' (also 'mesh folder wait NAME').
func waitCmd(cl func() (*client, error), stdout, stderr io.Writer) *cobra.Command {
	var timeout time.Duration
	var quiet bool
	wait := &cobra.Command{
		Use:   "wait NAME [--timeout D]",
		Short: "Return when a folder holds every change made on the online devices (for scripts)",
		Long: `Return when this device's copy of folder NAME holds every change written on
an online member of the folder before wait was called: each online member is
asked to index its copy first, then synced with. Members that are offline, or
do not answer within 90 s, are named and not waited for; so is a member whose
sync round failed 4 times. A wait that could sync with none of the online
members fails.

Meanwhile it shows files and bytes done, the rate and the time left on
stderr: a bar on a terminal, otherwise a line every 10 s (none for a wait
shorter than that). --quiet shows nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: withClient(cl, func(c *client, args []string) error {
			return waitWithProgress(c, args[0], timeout, quiet, stdout, stderr)
		}),
	}
	wait.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	wait.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress display")
	return wait
}
