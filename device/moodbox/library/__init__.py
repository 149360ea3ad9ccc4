"""The music library heard by its sound: ``moodbox library scan`` decodes each track (ffmpeg), computes
the log-mel spectrogram (numpy) and runs the musicnn tagger (LiteRT), and stores the scores in MPD's
sticker database for the DJ. Never loaded by the daemon."""
