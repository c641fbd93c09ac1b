package h264

// Convert is convert, for the benchmark of libyuv alone.
var Convert = convert
