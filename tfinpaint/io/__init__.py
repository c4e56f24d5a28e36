"""Input and output: video files, the working clip, the run folder, the sample, progress lines."""
