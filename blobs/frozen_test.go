package blobs

// frozenRef is the BlobRef of randBytes(10, 8<<20) under chunking version 1.
const frozenRef = "blobvya5oqly7hesl26cwnwvckm4x33exvlihkg6pkjrzg57git4eb6q-8388608"
